import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lintText } from '../../src/tools/lint/lint-text.js';
import { renderText } from '../../src/tools/lint/render-report.js';
import { DEFAULT_OPTIONS, REPO_ROOT } from './lint-fixtures.js';

// The README's "Migrating from static keys" shows a template before and after, and the linter's output on the
// "before": both must stay true as the linter changes.

function section(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Migrating from static keys\n');
  assert.ok(start >= 0, 'README.md has no "Migrating from static keys" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? readme.length : end);
}

/** The fenced code blocks of a Markdown text whose opening fence names `language` ('' for none). */
function codeBlocks(text: string, language: string): string[] {
  const blocks: string[] = [];
  let open: { language: string; lines: string[] } | undefined;
  for (const line of text.split('\n')) {
    if (open === undefined) {
      if (line.startsWith('```')) open = { language: line.slice(3), lines: [] };
    } else if (line === '```') {
      if (open.language === language) blocks.push(open.lines.map((kept) => `${kept}\n`).join(''));
      open = undefined;
    } else {
      open.lines.push(line);
    }
  }
  return blocks;
}

describe('README: migrating from static keys', () => {
  const [before = '', after = ''] = codeBlocks(section(), 'yaml');
  const [output = ''] = codeBlocks(section(), '');

  it('the "before" template fails with the output the README shows', () => {
    assert.equal(renderText([lintText(before, 'orders-sync.yaml', DEFAULT_OPTIONS)]), output);
  });

  it('the "after" template lints clean, and so does the "before" with the suggested fix applied', () => {
    assert.deepEqual(lintText(after, 'orders-sync.yaml', DEFAULT_OPTIONS).findings, []);
    const [finding] = lintText(before, 'orders-sync.yaml', { ...DEFAULT_OPTIONS, suggest: true }).findings;
    assert.ok(finding?.suggestion !== undefined, 'no suggestion for the README example');
    const added = finding.suggestion.split('\n').filter((line) => line.startsWith('+') && !line.startsWith('+++'));
    assert.equal(added.some((line) => line.includes('audience: tyk-token-broker')), true);
  });
});
