import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/*
 * `npx NAME` fetches NAME from the public registry when it is not installed locally. This project's package is
 * private (never published), so a documented `npx token-broker ...` or `npx workload-token-broker ...` would run
 * whatever someone else publishes under that name: a supply-chain hole in a security tool's own docs. The docs
 * may only show the CLI from the container image, from a local build, or with `npx --no-install` inside the clone.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const files = spawnSync('git', ['ls-files', '-z', '--', '*.md', '*.yaml', '*.yml', '*.sh', 'Dockerfile'], { cwd: ROOT, encoding: 'utf8' })
  .stdout.split('\0')
  .filter((path) => path !== '');

describe('documented commands never fetch an unowned package', () => {
  it('the package is private: nothing may assume it is on the registry', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { private?: boolean };
    assert.equal(pkg.private, true);
    assert.ok(files.includes('README.md'), 'the checked files include the README');
  });

  it('no npx of token-broker or workload-token-broker without --no-install', () => {
    const offending: string[] = [];
    for (const file of files) {
      readFileSync(`${ROOT}${file}`, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\bnpx\s+(?!--no-install\b)(?:-\S+\s+)*(?:token-broker|workload-token-broker)\b/.test(line)) offending.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offending, []);
  });

  it('the pattern catches what it must (not vacuous)', () => {
    const pattern = /\bnpx\s+(?!--no-install\b)(?:-\S+\s+)*(?:token-broker|workload-token-broker)\b/;
    assert.ok(pattern.test('- run: npx token-broker lint workflows/'));
    assert.ok(pattern.test('npx -y workload-token-broker lint'));
    assert.ok(!pattern.test('npx --no-install token-broker lint'));
  });
});
