import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * ioredis is about 20 MB of resident memory. A broker without `cache.redis` must not load it; one with it loads it
 * while the broker is built. Each case runs in a fresh process, where ioredis (CommonJS) shows in require.cache
 * once loaded.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runChild(script: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

const PRELUDE = `
import { createRequire } from 'node:module';
import { pino } from 'pino';
import { createBroker } from './src/broker.ts';
import { validateConfig } from './src/config/validate-config.ts';
import { staticSigningKeySet } from './src/mint/signing-key-set.ts';
const ioredisLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/ioredis/'));
const base = {
  server: { port: 8080, publicUrl: 'https://token-broker.test' },
  issuers: [{ name: 'a', issuer: 'https://issuer.test', audiences: ['x'], jwksUri: 'https://issuer.test/jwks' }],
  signing: { algorithm: 'ES256', keysDir: '/unused' },
  rules: [{ name: 'r', match: { namespaces: ['*'] }, policies: ['p'] }],
};
function build(extra) {
  const v = validateConfig({ ...base, ...extra });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return createBroker(v.config, { logger: pino({ level: 'silent' }), signingKeys: staticSigningKeySet([]) });
}
`;

describe('ioredis is loaded only when cache.redis is configured', () => {
  it('no cache.redis: the broker is built without loading ioredis', () => {
    const child = runChild(`${PRELUDE}
const broker = build({});
console.log(JSON.stringify({ loaded: ioredisLoaded() }));
await broker.close();`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: false });
  });

  it('cache.redis: ioredis is loaded while the broker is built', () => {
    // Port 1 on loopback: nothing listens, and the client is closed at once; only the loading is under test.
    const child = runChild(`${PRELUDE}
const broker = build({ cache: { redis: { url: 'redis://127.0.0.1:1/0' } } });
console.log(JSON.stringify({ loaded: ioredisLoaded() }));
await broker.close();`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: true });
  });
});
