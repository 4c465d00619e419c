import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign, calculateJwkThumbprint, compactVerify, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { BrokerError, type ReasonCode } from '../../src/server/errors.js';
import { createIssuerFetch } from '../../src/server/issuers/issuer-fetch.js';
import { discoverJwksUri } from '../../src/server/issuers/discover-jwks-uri.js';
import { FileKeySet, RemoteKeySet, type KeySetEvents, type RemoteKeySetOptions } from '../../src/server/issuers/issuer-key-set.js';
import { startStandInIssuer, type StandInIssuer, type StandInIssuerOptions } from '../fakes/stand-in-issuer.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import type { IssuerConfig } from '../../src/server/config/schema.js';
import { registerIssuerKeySetContract } from '../contracts/issuer-key-set.contract.js';

const JWKS_PATH = '/openid/v1/jwks';
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const COOLDOWN_MS = 30_000;
const MAX_AGE_MS = 600_000;

function issuerConfig(issuer: string): IssuerConfig {
  return { name: 'test-cluster', issuer, audiences: ['tyk-token-broker'], kind: 'kubernetes', clockSkewSeconds: 30, allowInsecureHttp: false };
}

/** Asserts a promise rejects with the BrokerError of `code`, and returns it for further checks. */
async function rejectsWith(promise: Promise<unknown>, code: ReasonCode, status: number): Promise<BrokerError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof BrokerError, `expected BrokerError ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code);
  assert.equal(thrown.status, status);
  return thrown;
}

/** Records refresh events and lets a test wait for the next one (bounded: a test never hangs on it). */
function recordRefreshes(): KeySetEvents & { results: string[]; next(): Promise<string> } {
  const results: string[] = [];
  let waiters: Array<(result: string) => void> = [];
  return {
    results,
    onRefresh(result) {
      results.push(result);
      const current = waiters;
      waiters = [];
      for (const waiter of current) waiter(result);
    },
    next() {
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no refresh event within 5s')), 5000);
        timer.unref();
        waiters.push((result) => {
          clearTimeout(timer);
          resolve(result);
        });
      });
    },
  };
}

/** Lets a settled refresh finish its bookkeeping (the in-flight marker is cleared in a later microtask). */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

registerIssuerKeySetContract('RemoteKeySet (the stand-in issuer over HTTP)', {
  async create() {
    const issuer = await startStandInIssuer();
    return {
      keySet: new RemoteKeySet({ resolveJwksUri: () => Promise.resolve(issuer.jwksUri), fetch: createIssuerFetch({ credentialOrigins: new Set() }), now: Date.now }),
      alg: 'RS256',
      otherAlg: 'ES256',
      currentKid: () => issuer.kid,
      signToken: () => issuer.projectedToken(),
      rotate: () => issuer.rotateKey(),
      setAvailable: async (available) => issuer.setAvailable(available),
      close: () => issuer.close(),
    };
  },
});

registerIssuerKeySetContract('FileKeySet (a JWKS file)', {
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'key-set-contract-'));
    const path = join(dir, 'jwks.json');
    const keys = [await newEs256Key()];
    const current = () => keys[keys.length - 1] as TestKey;
    const publish = () => writeFile(path, JSON.stringify({ keys: keys.map((key) => key.publicJwk) }));
    await publish();
    return {
      keySet: new FileKeySet(path, Date.now),
      alg: 'ES256',
      otherAlg: 'RS256',
      currentKid: () => current().kid,
      signToken: () => signWith(current()),
      async rotate() {
        keys.push(await newEs256Key());
        await publish();
      },
      setAvailable: (available) => (available ? publish() : rm(path, { force: true })),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

interface TestKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function newEs256Key(): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicJwk: { ...jwk, kid, use: 'sig', alg: 'ES256' } };
}

async function signWith(key: TestKey): Promise<string> {
  return new CompactSign(new TextEncoder().encode('{"sub":"air-gapped"}')).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(key.privateKey);
}

describe('RemoteKeySet against the stand-in issuer', () => {
  let issuer: StandInIssuer;
  let clock: TestClock;

  before(async () => {
    clock = createTestClock();
    issuer = await startStandInIssuer({ now: clock.now });
  });
  after(() => issuer.close());

  /** A fresh key set on the stand-in's JWKS, and a counter of JWKS requests made from now on. */
  function keySet(extra: Partial<RemoteKeySetOptions> = {}) {
    issuer.setAvailable(true);
    const start = issuer.requests.get(JWKS_PATH) ?? 0;
    const keys = new RemoteKeySet({
      resolveJwksUri: () => Promise.resolve(issuer.jwksUri),
      fetch: createIssuerFetch({ credentialOrigins: new Set() }),
      now: clock.now,
      cooldownMs: COOLDOWN_MS,
      maxAgeMs: MAX_AGE_MS,
      ...extra,
    });
    return { keys, fetches: () => (issuer.requests.get(JWKS_PATH) ?? 0) - start };
  }

  it('loads lazily on first use and verifies a real token with the key it returns', async () => {
    const { keys, fetches } = keySet();
    assert.equal(keys.loaded, false);
    assert.equal(keys.lastSuccessAt, undefined);
    assert.equal(fetches(), 0);
    const token = await issuer.projectedToken();
    const key = await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    const { payload } = await compactVerify(token, key, { algorithms: ['RS256'] });
    assert.equal(JSON.parse(new TextDecoder().decode(payload)).iss, issuer.issuer);
    assert.equal(keys.loaded, true);
    assert.equal(keys.lastSuccessAt, clock.now());
    assert.equal(fetches(), 1);
    await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    assert.equal(fetches(), 1, 'a known kid is served from memory');
  });

  it('concurrent first uses and refreshes collapse into one JWKS request each', async () => {
    const { keys, fetches } = keySet();
    const results = await Promise.all(Array.from({ length: 20 }, () => keys.getKey({ alg: 'RS256', kid: issuer.kid })));
    assert.equal(results.length, 20);
    assert.equal(fetches(), 1, 'twenty concurrent first uses, one fetch');
    await Promise.all(Array.from({ length: 10 }, () => keys.refresh()));
    assert.equal(fetches(), 2, 'ten concurrent refreshes, one fetch');
  });

  it('concurrent unknown kids after the cool-down collapse into one request', async () => {
    const { keys, fetches } = keySet();
    await keys.refresh();
    clock.advance(COOLDOWN_MS / 1000 + 1);
    const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => keys.getKey({ alg: 'RS256', kid: `ghost-${i}` })));
    for (const result of settled) {
      assert.equal(result.status, 'rejected');
      assert.ok(result.reason instanceof BrokerError && result.reason.code === 'unknown_kid');
    }
    assert.equal(fetches(), 2, 'the initial load plus one refetch for all ten');
  });

  it('an unknown kid refetches at most once per cool-down', async () => {
    const { keys, fetches } = keySet();
    await keys.refresh();
    assert.equal(fetches(), 1);

    // Within the cool-down of the initial load: refused without asking the issuer.
    const error = await rejectsWith(keys.getKey({ alg: 'RS256', kid: 'attacker-chosen' }), 'unknown_kid', 400);
    assert.equal(error.oauthError, 'invalid_request');
    assert.match(error.description, /does not publish \(unknown "kid"\)/);
    assert.equal(error.facts.kid, 'attacker-chosen');
    for (let i = 0; i < 25; i++) await rejectsWith(keys.getKey({ alg: 'RS256', kid: `random-${i}` }), 'unknown_kid', 400);
    assert.equal(fetches(), 1, 'a flood of unknown kids does not reach the issuer');

    clock.advance(COOLDOWN_MS / 1000 - 1);
    await rejectsWith(keys.getKey({ alg: 'RS256', kid: 'still-cooling' }), 'unknown_kid', 400);
    assert.equal(fetches(), 1, 'one second short of the cool-down');

    clock.advance(1);
    await rejectsWith(keys.getKey({ alg: 'RS256', kid: 'after-cool-down' }), 'unknown_kid', 400);
    assert.equal(fetches(), 2, 'the cool-down has passed: one refetch');
    await rejectsWith(keys.getKey({ alg: 'RS256', kid: 'right-after' }), 'unknown_kid', 400);
    assert.equal(fetches(), 2, 'and the next unknown kid waits for the next cool-down');
  });

  it('picks up a rotated key on its unknown kid once the cool-down has passed', async () => {
    const { keys, fetches } = keySet();
    const oldKid = issuer.kid;
    await keys.refresh();
    await issuer.rotateKey();
    const newKid = issuer.kid;
    assert.notEqual(newKid, oldKid);
    const token = await issuer.projectedToken();

    await rejectsWith(keys.getKey({ alg: 'RS256', kid: newKid }), 'unknown_kid', 400);
    assert.equal(fetches(), 1, 'inside the cool-down the new kid is not fetched');

    clock.advance(COOLDOWN_MS / 1000);
    const key = await keys.getKey({ alg: 'RS256', kid: newKid });
    await compactVerify(token, key, { algorithms: ['RS256'] });
    assert.equal(fetches(), 2);
    await keys.getKey({ alg: 'RS256', kid: oldKid });
    assert.equal(fetches(), 2, 'the old key, still published, stays known');
  });

  it('concurrent requests carrying a freshly rotated kid all wait for the one refetch', async () => {
    const { keys, fetches } = keySet();
    await keys.refresh();
    await issuer.rotateKey();
    const newKid = issuer.kid;
    clock.advance(COOLDOWN_MS / 1000);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => keys.getKey({ alg: 'RS256', kid: newKid })));
    assert.deepEqual(
      results.map((r) => r.status),
      Array.from({ length: 10 }, () => 'fulfilled'),
      'none of them is refused while the refetch that finds the key is in flight',
    );
    assert.equal(fetches(), 2);
  });

  it('a rotated kid arriving when the keys are past their max age is found by the refresh it starts', async () => {
    const { keys, fetches } = keySet();
    await keys.refresh();
    await issuer.rotateKey();
    clock.advance(MAX_AGE_MS / 1000 + 1);
    const token = await issuer.projectedToken();
    const key = await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    await compactVerify(token, key, { algorithms: ['RS256'] });
    assert.equal(fetches(), 2, 'the max-age refresh and the unknown-kid refetch are the same request');
  });

  it('keeps verifying with stale keys while the JWKS endpoint is down, and recovers', async () => {
    const events = recordRefreshes();
    const { keys, fetches } = keySet({ events });
    const token = await issuer.projectedToken();
    await keys.refresh();
    const loadedAt = keys.lastSuccessAt;
    assert.deepEqual(events.results, ['success']);

    issuer.setAvailable(false);
    clock.advance(MAX_AGE_MS / 1000 + 1);
    const failure = events.next();
    // Past max age: a background refresh starts and fails, the known key keeps serving.
    const key = await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    await compactVerify(token, key, { algorithms: ['RS256'] });
    assert.equal(await failure, 'error');
    await settled();
    assert.equal(fetches(), 2);
    assert.equal(keys.loaded, true);
    assert.equal(keys.lastSuccessAt, loadedAt, 'a failed refresh does not count as a success');

    // An unknown kid during the outage cannot be resolved: the caller is told to retry, not that its token is bad.
    clock.advance(COOLDOWN_MS / 1000);
    const unavailable = await rejectsWith(keys.getKey({ alg: 'RS256', kid: 'rotated-while-down' }), 'issuer_unavailable', 503);
    assert.equal(unavailable.oauthError, 'temporarily_unavailable');
    assert.match(unavailable.detail ?? '', /HTTP 503/);
    await settled();
    assert.equal(fetches(), 3, 'the max-age refresh and the unknown-kid refetch were one request');
    const stillKnown = await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    assert.equal(fetches(), 3, 'inside the cool-down the stale key is served without another attempt');
    await compactVerify(token, stillKnown, { algorithms: ['RS256'] });

    issuer.setAvailable(true);
    clock.advance(COOLDOWN_MS / 1000);
    const success = events.next();
    await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    assert.equal(await success, 'success');
    assert.equal(keys.lastSuccessAt, clock.now());
  });

  it('answers 503 issuer_unavailable when keys were never loaded and the issuer is down', async () => {
    const events = recordRefreshes();
    const { keys } = keySet({ events });
    issuer.setAvailable(false);
    const error = await rejectsWith(keys.getKey({ alg: 'RS256', kid: issuer.kid }), 'issuer_unavailable', 503);
    assert.equal(error.oauthError, 'temporarily_unavailable');
    assert.match(error.description, /cannot load its keys/);
    assert.ok(!error.description.includes(issuer.baseUrl), 'the issuer address stays out of the client description');
    assert.match(error.detail ?? '', /JWKS fetch failed: JWKS answered HTTP 503/);
    assert.equal(keys.loaded, false);
    assert.deepEqual(events.results, ['error']);
    await assert.rejects(keys.refresh(), /HTTP 503/);

    issuer.setAvailable(true);
    await rejectsWith(keys.getKey({ alg: 'RS256', kid: issuer.kid }), 'issuer_unavailable', 503);
    assert.deepEqual(events.results, ['error', 'error'], 'within the back-off a request does not refetch');
    clock.advance(2);
    await keys.getKey({ alg: 'RS256', kid: issuer.kid });
    assert.equal(keys.loaded, true, 'never loaded: after a short back-off (not the cool-down) the next request retries');
  });

  it('refuses a JWKS document that is not a key set, and keeps the keys it had', async () => {
    const { keys } = keySet();
    await keys.refresh();
    const broken = new RemoteKeySet({
      resolveJwksUri: () => Promise.resolve(`${issuer.baseUrl}${DISCOVERY_PATH}`),
      fetch: createIssuerFetch({ credentialOrigins: new Set() }),
      now: clock.now,
    });
    await rejectsWith(broken.getKey({ alg: 'RS256', kid: issuer.kid }), 'issuer_unavailable', 503);
    assert.equal(broken.loaded, false);
  });

  it('refuses a key of the right kid for the wrong algorithm without refetching', async () => {
    const { keys, fetches } = keySet();
    await keys.refresh();
    clock.advance(COOLDOWN_MS / 1000 + 1);
    const error = await rejectsWith(keys.getKey({ alg: 'ES256', kid: issuer.kid }), 'unsupported_algorithm', 400);
    assert.match(error.description, /cannot verify ES256 signatures/);
    assert.equal(fetches(), 1);
  });
});

describe('discovery', () => {
  const started: StandInIssuer[] = [];
  after(async () => {
    for (const issuer of started) await issuer.close();
  });

  async function standIn(options: StandInIssuerOptions = {}): Promise<StandInIssuer> {
    const issuer = await startStandInIssuer(options);
    started.push(issuer);
    return issuer;
  }

  it('returns the jwks_uri of a document whose issuer matches exactly', async () => {
    const plain = await standIn();
    assert.equal(await discoverJwksUri(issuerConfig(plain.issuer), createIssuerFetch({ credentialOrigins: new Set() })), plain.jwksUri);
    const aks = await standIn({ trailingSlash: true, path: '/tenant/cluster' });
    assert.ok(aks.issuer.endsWith('/tenant/cluster/'));
    assert.equal(await discoverJwksUri(issuerConfig(aks.issuer), createIssuerFetch({ credentialOrigins: new Set() })), aks.jwksUri);
  });

  it('refuses a document whose issuer lacks the configured trailing slash', async () => {
    const plain = await standIn();
    await assert.rejects(discoverJwksUri(issuerConfig(`${plain.issuer}/`), createIssuerFetch({ credentialOrigins: new Set() })), (error: Error) => {
      assert.match(error.message, /names issuer ".*", expected ".*\/" exactly/);
      return true;
    });
  });

  it('refuses a document whose issuer has a trailing slash the configuration lacks', async () => {
    const aks = await standIn({ trailingSlash: true });
    const configured = aks.issuer.replace(/\/$/, '');
    await assert.rejects(discoverJwksUri(issuerConfig(configured), createIssuerFetch({ credentialOrigins: new Set() })), /expected "http:\/\/127\.0\.0\.1:\d+" exactly/);
  });

  it('a key set behind a mismatched discovery never loads: 503 issuer_unavailable, no JWKS fetched', async () => {
    const plain = await standIn();
    const config = issuerConfig(`${plain.issuer}/`);
    const fetch = createIssuerFetch({ credentialOrigins: new Set() });
    const keys = new RemoteKeySet({ resolveJwksUri: () => discoverJwksUri(config, fetch), fetch, now: Date.now });
    const error = await rejectsWith(keys.getKey({ alg: 'RS256', kid: plain.kid }), 'issuer_unavailable', 503);
    assert.match(error.detail ?? '', /expected ".*" exactly/);
    assert.equal(plain.requests.get(DISCOVERY_PATH), 1);
    assert.equal(plain.requests.get(JWKS_PATH) ?? 0, 0);
    assert.equal(keys.loaded, false);
  });
});

describe('FileKeySet', () => {
  let dir: string;
  let clock: TestClock;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'issuer-key-set-'));
    clock = createTestClock();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('loads on first use, verifies, and refuses unknown kids without re-reading', async () => {
    const key = await newEs256Key();
    const path = join(dir, 'jwks.json');
    await writeFile(path, JSON.stringify({ keys: [key.publicJwk] }));
    const events = recordRefreshes();
    const keys = new FileKeySet(path, clock.now, events);
    assert.equal(keys.loaded, false);
    const verificationKey = await keys.getKey({ alg: 'ES256', kid: key.kid });
    await compactVerify(await signWith(key), verificationKey, { algorithms: ['ES256'] });
    assert.equal(keys.lastSuccessAt, clock.now());

    const other = await newEs256Key();
    await writeFile(path, JSON.stringify({ keys: [key.publicJwk, other.publicJwk] }));
    await rejectsWith(keys.getKey({ alg: 'ES256', kid: other.kid }), 'unknown_kid', 400);
    assert.deepEqual(events.results, ['success'], 'an unknown kid does not re-read the file');

    // An operator reload re-reads it.
    clock.advance(60);
    await keys.refresh();
    await compactVerify(await signWith(other), await keys.getKey({ alg: 'ES256', kid: other.kid }), { algorithms: ['ES256'] });
    assert.equal(keys.lastSuccessAt, clock.now());
    assert.deepEqual(events.results, ['success', 'success']);
  });

  it('answers 503 issuer_unavailable when the file cannot be read, and the detail names the file', async () => {
    const path = join(dir, 'missing.json');
    const keys = new FileKeySet(path, clock.now);
    const error = await rejectsWith(keys.getKey({ alg: 'ES256', kid: 'any' }), 'issuer_unavailable', 503);
    assert.equal(error.oauthError, 'temporarily_unavailable');
    assert.ok(!error.description.includes(path), 'file paths stay out of the client description');
    assert.ok((error.detail ?? '').includes(path));
    assert.equal(keys.loaded, false);
  });

  it('a broken file on reload keeps the keys already loaded', async () => {
    const key = await newEs256Key();
    const path = join(dir, 'reload.json');
    await writeFile(path, JSON.stringify({ keys: [key.publicJwk] }));
    const events = recordRefreshes();
    const keys = new FileKeySet(path, clock.now, events);
    await keys.refresh();
    await writeFile(path, '{"keys": [');
    await assert.rejects(keys.refresh(), SyntaxError);
    await writeFile(path, JSON.stringify({ issuer: 'no keys here' }));
    await assert.rejects(keys.refresh(), /not a JWK Set/);
    assert.deepEqual(events.results, ['success', 'error', 'error']);
    await compactVerify(await signWith(key), await keys.getKey({ alg: 'ES256', kid: key.kid }), { algorithms: ['ES256'] });
  });
});
