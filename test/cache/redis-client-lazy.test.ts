import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runBrokerChild } from '../support/broker-child.js';

/*
 * ioredis is about 20 MB of resident memory. A broker without `cache.redis` must not load it; one with it loads it
 * while the broker is built. Each case runs in a fresh process, where ioredis (CommonJS) shows in require.cache
 * once loaded.
 */

const IMPORTS = `
import { createRequire } from 'node:module';
const ioredisLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/ioredis/'));`;

describe('ioredis is loaded only when cache.redis is configured', () => {
  it('no cache.redis: the broker is built without loading ioredis', () => {
    const child = runBrokerChild(IMPORTS, `const broker = build({});
console.log(JSON.stringify({ loaded: ioredisLoaded() }));
await broker.close();`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: false });
  });

  it('cache.redis: ioredis is loaded while the broker is built', () => {
    // Port 1 on loopback: nothing listens, and the client is closed at once; only the loading is under test.
    const child = runBrokerChild(IMPORTS, `const broker = build({ cache: { redis: { url: 'redis://127.0.0.1:1/0' } } });
console.log(JSON.stringify({ loaded: ioredisLoaded() }));
await broker.close();`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: true });
  });
});
