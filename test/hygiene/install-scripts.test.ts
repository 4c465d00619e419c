import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/*
 * npm 11 runs a dependency's install scripts only when package.json's allowScripts approves them, and warns on
 * `npm ci` about every one it has no decision for. The project decides for each, so a fresh install is quiet and a
 * new dependency with an install script fails this test until someone decides.
 */

const ROOT = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { allowScripts?: Record<string, boolean> };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', ROOT), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };

describe('install scripts', () => {
  const withScripts = Object.entries(lock.packages)
    .filter(([path, entry]) => path !== '' && entry.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
    .sort();

  it('every locked package with an install script has a decision in allowScripts, and no decision is stale', () => {
    assert.ok(withScripts.length > 0, 'the lockfile lists install scripts (the check is not vacuous)');
    assert.deepEqual(Object.keys(pkg.allowScripts ?? {}).sort(), withScripts);
  });

  it('esbuild\'s postinstall is denied: it only re-checks the platform binary that its optional dependency installs', () => {
    assert.equal(pkg.allowScripts?.esbuild, false);
    assert.ok(Object.keys(lock.packages).some((path) => /node_modules\/@esbuild\/linux-x64$/.test(path)), 'the platform binary comes as a package');
  });
});
