import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * A link checker over every Markdown file in the repository (git ls-files, so exactly what a clone has; the
 * directory walk is the fallback for a tree that is not a git checkout). A renamed file or heading must not leave
 * a dead link behind: every relative link must name an existing file, and every #anchor a heading of its target
 * (GitHub's slugs, duplicates numbered -1, -2, ...).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function markdownFiles(): string[] {
  const listed = spawnSync('git', ['ls-files', '-z', '--', '*.md'], { cwd: ROOT, encoding: 'utf8' });
  if (listed.status === 0 && listed.stdout !== '') return listed.stdout.split('\0').filter((path) => path !== '').sort();
  if (process.env.CI === 'true') throw new Error(`git ls-files failed in CI: ${listed.stderr}`);
  return ['README.md', 'docs/argo.md', 'docs/tyk.md', 'docs/configuration.md', 'examples/argo/README.md'];
}

const GUIDES = markdownFiles();

/** GitHub's heading anchor: lower-case, punctuation dropped except `-` and `_`, spaces to `-`. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of withoutCode.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(m[1] ?? '');
    const count = seen.get(base) ?? 0;
    anchors.add(count === 0 ? base : `${base}-${count}`);
    seen.set(base, count + 1);
  }
  return anchors;
}

/** Markdown links outside fenced code: [text](target), targets without a scheme. */
function relativeLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((target) => !/^[a-z]+:/i.test(target));
}

describe('links in the guides', () => {
  it('the slug rule gives GitHub\'s anchors', () => {
    assert.equal(slug('The base64 gotcha (TykTechnologies/tyk#7461)'), 'the-base64-gotcha-tyktechnologiestyk7461');
    assert.equal(slug('7. RBAC'), '7-rbac');
    assert.equal(slug('Tyk keys instead of JWTs: `tokens.format: tyk-key`'), 'tyk-keys-instead-of-jwts-tokensformat-tyk-key');
  });

  for (const guide of GUIDES) {
    it(`${guide}: every relative link names an existing file and heading`, () => {
      const markdown = readFileSync(join(ROOT, guide), 'utf8');
      const links = relativeLinks(markdown);
      for (const link of links) {
        const [path = '', anchor] = link.split('#');
        const target = path === '' ? join(ROOT, guide) : resolve(dirname(join(ROOT, guide)), path);
        assert.ok(existsSync(target), `${guide}: ${link} -> ${target} does not exist`);
        if (anchor !== undefined && target.endsWith('.md')) {
          assert.ok(anchorsOf(readFileSync(target, 'utf8')).has(anchor), `${guide}: ${link}: no heading with anchor #${anchor}`);
        }
      }
    });
  }

  it('every Markdown file of the repository is checked, README and docs included', () => {
    for (const file of ['README.md', 'docs/deployment.md', 'docs/runbook.md', 'docs/threat-model.md', 'examples/argo/README.md']) assert.ok(GUIDES.includes(file), file);
  });

  it('the guides link each other and the examples', () => {
    assert.ok(relativeLinks(readFileSync(join(ROOT, 'docs/argo.md'), 'utf8')).includes('../examples/argo/README.md'));
    assert.ok(relativeLinks(readFileSync(join(ROOT, 'docs/argo.md'), 'utf8')).includes('tyk.md'));
    assert.ok(relativeLinks(readFileSync(join(ROOT, 'examples/argo/README.md'), 'utf8')).includes('../../docs/argo.md'));
  });
});
