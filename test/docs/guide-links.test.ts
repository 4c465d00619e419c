import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * The Argo and Tyk guides link to each other, to the examples and to other docs. A renamed file or heading must
 * not leave a dead link behind: every relative link must name an existing file, and every #anchor a heading of
 * its target (GitHub's slugs).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GUIDES = ['docs/argo.md', 'docs/tyk.md', 'docs/configuration.md', 'examples/argo/README.md'];

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
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] ?? '')));
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

  it('the guides link each other and the examples', () => {
    assert.ok(relativeLinks(readFileSync(join(ROOT, 'docs/argo.md'), 'utf8')).includes('../examples/argo/README.md'));
    assert.ok(relativeLinks(readFileSync(join(ROOT, 'docs/argo.md'), 'utf8')).includes('tyk.md'));
    assert.ok(relativeLinks(readFileSync(join(ROOT, 'examples/argo/README.md'), 'utf8')).includes('../../docs/argo.md'));
  });
});
