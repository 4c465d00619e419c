import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { createTrustedIssuers, type TrustedIssuer, type TrustedIssuers } from '../../src/server/issuers/trusted-issuers.js';
import { tokenSha256, verifySubjectToken } from '../../src/server/issuers/verify-subject-token.js';
import { VerifiedTokenCache, type VerifiedSignature } from '../../src/server/issuers/verified-token-cache.js';
import { checkTemporalClaims } from '../../src/server/issuers/temporal-claims.js';
import { BrokerError } from '../../src/server/errors.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import type { StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { useHarness, SUBJECT_AUDIENCE } from '../support/broker-harness.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { startClusterHarness, type ClusterHarness } from '../support/cluster-harness.js';
import type { IssuerConfig } from '../../src/server/config/schema.js';

/*
 * The verified-token cache may skip exactly two things for a re-presented subject token: the signature check and
 * the claim parsing. Everything that depends on time or on the cluster (exp/nbf/iat with the skew, pod binding)
 * is judged afresh on every request, and a change of the issuer's keys makes every remembered verification void.
 */

const SKEW = 30;

function issuerConfig(issuer: StandInIssuer): IssuerConfig {
  return {
    name: 'test-cluster',
    issuer: issuer.issuer,
    audiences: [SUBJECT_AUDIENCE],
    kind: 'kubernetes',
    clockSkewSeconds: SKEW,
    allowInsecureHttp: false,
  } as IssuerConfig;
}

/** Trusted issuers whose getKeys calls are counted: every signature verification looks its key up once. */
function countingIssuers(issuers: TrustedIssuers): { issuers: TrustedIssuers; keyLookups: () => number } {
  let lookups = 0;
  for (const trusted of issuers.all) {
    const getKey = trusted.keys.getKeys.bind(trusted.keys);
    trusted.keys.getKeys = (header) => {
      lookups += 1;
      return getKey(header);
    };
  }
  return { issuers, keyLookups: () => lookups };
}

function errorCode(error: unknown): string {
  assert.ok(error instanceof BrokerError, `expected a BrokerError, got ${String(error)}`);
  return error.code;
}

describe('VerifiedTokenCache (unit)', () => {
  const fakeIssuer = (name: string, generation: { value: number }): TrustedIssuer =>
    ({ config: { name }, keys: { get generation() { return generation.value; } } }) as unknown as TrustedIssuer;
  const entry = (issuer: TrustedIssuer, keysGeneration: number): VerifiedSignature => ({
    issuer,
    claims: { sub: 'x' },
    algorithm: 'RS256',
    kid: 'k',
    keysGeneration,
  });

  it('is a bounded LRU: over the bound, the least recently used entry goes', () => {
    const generation = { value: 1 };
    const issuer = fakeIssuer('a', generation);
    const cache = new VerifiedTokenCache(2);
    cache.set('A', entry(issuer, 1));
    cache.set('B', entry(issuer, 1));
    assert.ok(cache.get('A'), 'A read: now B is the least recently used');
    cache.set('C', entry(issuer, 1));
    assert.equal(cache.size, 2);
    assert.equal(cache.get('B'), undefined);
    assert.ok(cache.get('A'));
    assert.ok(cache.get('C'));
  });

  it('an entry verified under another key-set generation is a miss, and is dropped', () => {
    const generation = { value: 1 };
    const cache = new VerifiedTokenCache(10);
    cache.set('A', entry(fakeIssuer('a', generation), 1));
    generation.value = 2;
    assert.equal(cache.get('A'), undefined);
    assert.equal(cache.size, 0);
  });

  it('purge(issuer) drops that issuer\'s entries only; purge() drops all', () => {
    const cache = new VerifiedTokenCache(10);
    cache.set('A', entry(fakeIssuer('a', { value: 1 }), 1));
    cache.set('B', entry(fakeIssuer('b', { value: 1 }), 1));
    cache.purge('a');
    assert.equal(cache.get('A'), undefined);
    assert.ok(cache.get('B'));
    cache.purge();
    assert.equal(cache.size, 0);
  });

  it('refuses a bound that is not a positive integer', () => {
    assert.throws(() => new VerifiedTokenCache(0));
  });
});

describe('verifySubjectToken with a verified-token cache (stand-in issuer)', () => {
  let clock: TestClock;
  let issuer: StandInIssuer;

  before(async () => {
    clock = createTestClock();
    issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, now: clock.now });
  });
  after(() => issuer.close());

  /** A cache and trusted issuers whose keys are loaded, as `serve` loads them before taking traffic. */
  async function fresh(options: { maxEntries?: number; purgeOnKeyChange?: boolean } = {}) {
    const cache = new VerifiedTokenCache(options.maxEntries ?? 100);
    const trusted = createTrustedIssuers([issuerConfig(issuer)], {
      now: clock.now,
      ...(options.purgeOnKeyChange !== false && { eventsFor: (name: string) => ({ onKeysChanged: () => cache.purge(name) }) }),
    });
    for (const t of trusted.all) await t.keys.refresh();
    return { cache, ...countingIssuers(trusted) };
  }

  it('a verification during which the key set changed (here: its first load) is not remembered', async () => {
    const cache = new VerifiedTokenCache(10);
    const trusted = createTrustedIssuers([issuerConfig(issuer)], { now: clock.now });
    await verifySubjectToken(await issuer.projectedToken(), trusted, clock.now, cache);
    assert.equal(cache.size, 0);
  });

  it('a re-presented token skips the signature check, with the same result', async () => {
    const { cache, issuers, keyLookups } = await fresh();
    const token = await issuer.projectedToken();
    const first = await verifySubjectToken(token, issuers, clock.now, cache);
    assert.equal(keyLookups(), 1);
    const second = await verifySubjectToken(token, issuers, clock.now, cache);
    assert.equal(keyLookups(), 1, 'no second key lookup: the signature was not verified again');
    assert.deepEqual(second, first);
    assert.equal(second.sha256, tokenSha256(token));
  });

  it('the cached claims are frozen: no request can change what the next one reads', async () => {
    const { cache, issuers } = await fresh();
    const token = await issuer.projectedToken();
    await verifySubjectToken(token, issuers, clock.now, cache);
    const { claims } = await verifySubjectToken(token, issuers, clock.now, cache);
    assert.ok(Object.isFrozen(claims));
    assert.ok(Object.isFrozen(claims['kubernetes.io']));
  });

  it('an expired token is refused even though it is cached, with the uncached message, and stays for its retries', async () => {
    const { cache, issuers, keyLookups } = await fresh();
    const token = await issuer.projectedToken({ lifetimeSeconds: 600 });
    await verifySubjectToken(token, issuers, clock.now, cache);
    assert.equal(cache.size, 1);
    const start = clock.now();
    try {
      clock.advance(600 + SKEW - 1);
      await verifySubjectToken(token, issuers, clock.now, cache); // inside the skew: still accepted
      clock.advance(1);
      const expected = (() => {
        try {
          checkTemporalClaims(decodeJwt(token), Math.floor(clock.now() / 1000), SKEW);
        } catch (error) {
          return error as BrokerError;
        }
        throw new Error('the token should be expired by now');
      })();
      await assert.rejects(verifySubjectToken(token, issuers, clock.now, cache), (error: unknown) => {
        assert.equal(errorCode(error), 'expired');
        assert.equal((error as BrokerError).description, expected.description);
        return true;
      });
      assert.equal(keyLookups(), 1, 'refused from the cached verification, by its time alone');
      assert.equal(cache.size, 1, 'kept: a retry with the same expired token is refused by the clock alone');
      await assert.rejects(verifySubjectToken(token, issuers, clock.now, cache), (error: unknown) => errorCode(error) === 'expired');
      assert.equal(keyLookups(), 1, 'the retry made no signature check either');
    } finally {
      clock.set(start);
    }
  });

  it('a token not yet valid (nbf beyond the skew) is refused on a cache hit as well', async () => {
    const { cache, issuers } = await fresh();
    const token = await issuer.projectedToken({ offsetSeconds: SKEW - 5 });
    await verifySubjectToken(token, issuers, clock.now, cache);
    const start = clock.now();
    try {
      clock.advance(-10); // the broker's clock steps back: now nbf - skew > now
      await assert.rejects(verifySubjectToken(token, issuers, clock.now, cache), (error: unknown) => errorCode(error) === 'not_yet_valid');
    } finally {
      clock.set(start);
    }
  });

  it('a key-set rotation purges the issuer\'s entries; a token of a dropped key is then refused', async () => {
    const { cache, issuers } = await fresh();
    const token = await issuer.projectedToken();
    await verifySubjectToken(token, issuers, clock.now, cache);
    assert.equal(cache.size, 1);
    await issuer.rotateKey({ dropOld: true });
    await issuers.all[0]?.keys.refresh();
    assert.equal(cache.size, 0, 'purged when the keys changed');
    await assert.rejects(verifySubjectToken(token, issuers, clock.now, cache), (error: unknown) => errorCode(error) === 'unknown_kid');
  });

  it('without the purge hook, a changed key set still makes the remembered verification a miss', async () => {
    const { cache, issuers, keyLookups } = await fresh({ purgeOnKeyChange: false });
    const token = await issuer.projectedToken();
    await verifySubjectToken(token, issuers, clock.now, cache);
    await issuer.rotateKey(); // the old key stays published: the token is still valid, but must be verified again
    await issuers.all[0]?.keys.refresh();
    const before = keyLookups();
    await verifySubjectToken(token, issuers, clock.now, cache);
    assert.equal(keyLookups(), before + 1, 'verified again against the new key set');
  });

  it('a refetch that brings the same keys keeps the entries', async () => {
    const { cache, issuers, keyLookups } = await fresh();
    const token = await issuer.projectedToken();
    await verifySubjectToken(token, issuers, clock.now, cache);
    const generation = issuers.all[0]?.keys.generation;
    await issuers.all[0]?.keys.refresh();
    assert.equal(issuers.all[0]?.keys.generation, generation);
    assert.equal(cache.size, 1);
    const before = keyLookups();
    await verifySubjectToken(token, issuers, clock.now, cache);
    assert.equal(keyLookups(), before);
  });

  it('a token pushed out by the bound is verified again on its next use', async () => {
    const { cache, issuers, keyLookups } = await fresh({ maxEntries: 2 });
    const [a, b, c] = await Promise.all([issuer.projectedToken(), issuer.projectedToken(), issuer.projectedToken()]);
    for (const token of [a, b, c]) await verifySubjectToken(token as string, issuers, clock.now, cache);
    assert.equal(cache.size, 2);
    const before = keyLookups();
    await verifySubjectToken(c as string, issuers, clock.now, cache);
    assert.equal(keyLookups(), before, 'c is still cached');
    await verifySubjectToken(a as string, issuers, clock.now, cache);
    assert.equal(keyLookups(), before + 1, 'a was evicted and verified again');
  });

  it('an authentic token first seen expired is refused, then refused again by its time alone', async () => {
    const { cache, issuers, keyLookups } = await fresh();
    const token = await issuer.projectedToken({ lifetimeSeconds: 600 });
    const start = clock.now();
    try {
      clock.advance(600 + SKEW + 30);
      const refusals: string[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        await assert.rejects(verifySubjectToken(token, issuers, clock.now, cache), (error: unknown) => {
          assert.equal(errorCode(error), 'expired');
          refusals.push((error as BrokerError).description);
          return true;
        });
      }
      assert.equal(new Set(refusals).size, 1, 'the same precise refusal every time');
      assert.equal(keyLookups(), 1, 'one signature check, on first sight');
      assert.equal(cache.size, 1);
    } finally {
      clock.set(start);
    }
  });

  it('an expired token for another audience is refused expired, and never remembered', async () => {
    const { cache, issuers } = await fresh();
    const token = await issuer.projectedToken({ audience: 'someone-else', lifetimeSeconds: 600 });
    const start = clock.now();
    try {
      clock.advance(600 + SKEW + 30);
      await assert.rejects(verifySubjectToken(token, issuers, clock.now, cache), (error: unknown) => errorCode(error) === 'expired');
      assert.equal(cache.size, 0);
    } finally {
      clock.set(start);
    }
  });

  it('a refused token is never remembered', async () => {
    const { cache, issuers } = await fresh();
    const wrongAudience = await issuer.projectedToken({ audience: 'someone-else' });
    await assert.rejects(verifySubjectToken(wrongAudience, issuers, clock.now, cache), (error: unknown) => errorCode(error) === 'audience_mismatch');
    const forged = `${(await issuer.projectedToken()).slice(0, -4)}AAAA`;
    await assert.rejects(verifySubjectToken(forged, issuers, clock.now, cache), (error: unknown) => errorCode(error) === 'bad_signature');
    assert.equal(cache.size, 0);
  });
});

describe('exchange with the verified-token cache (broker harness)', () => {
  const h = useHarness({ warmUp: true });

  it('re-presenting a token is served from the cached verification; once expired it gets the exact expiry refusal', async () => {
    const token = await h.issuer.projectedToken({ lifetimeSeconds: 600 });
    assert.equal((await h.exchange(token)).status, 200);
    assert.equal(h.broker.verifiedTokens.size, 1);
    assert.equal((await h.exchange(token)).status, 200);
    const start = h.clock.now();
    try {
      h.clock.advance(600 + SKEW);
      const res = await h.exchange(token);
      assert.equal(res.status, 400);
      assert.deepEqual(res.body, {
        error: 'invalid_request',
        error_description:
          'The subject token expired 30s ago. Its lifetime was 10m. A few seconds to minutes usually means the node clock and the broker clock disagree, or the token was read just before the kubelet rotated it.',
        reason: 'expired',
      });
      assert.equal(h.broker.verifiedTokens.size, 1, 'kept for the retries of the expired token');
      assert.deepEqual((await h.exchange(token)).body, res.body, 'a retry gets the same refusal');
    } finally {
      h.clock.set(start);
    }
  });
});

describe('pod binding is checked on a cached verification', () => {
  let kube: StandInKubernetes;
  let h: ClusterHarness;

  before(async () => {
    h = await startClusterHarness({ kubernetes: { podBinding: 'enforce', cacheSeconds: { namespace: 60, serviceAccount: 60, pod: 10 } } });
    kube = h.kube;
    kube.putNamespace('payments');
  });
  after(() => h.close());

  it('the pod deleted after a first exchange: the same token, verified from the cache, is refused pod_not_found', async () => {
    kube.putServiceAccount('payments', 'argo-runner');
    const pod = kube.putPod('payments', 'step-verified-cache', { serviceAccountName: 'argo-runner' });
    const token = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner', podName: 'step-verified-cache', podUid: pod.metadata.uid });
    assert.equal((await h.exchange(token)).status, 200);

    let cachedVerifications = 0;
    const get = h.broker.verifiedTokens.get.bind(h.broker.verifiedTokens);
    h.broker.verifiedTokens.get = (sha256) => {
      const found = get(sha256);
      if (found !== undefined) cachedVerifications += 1;
      return found;
    };
    kube.deletePod('payments', 'step-verified-cache');
    h.clock.advance(11); // past the pod lookup cache (10 s), well inside the token's lifetime
    const res = await h.exchange(token);
    assert.equal(cachedVerifications, 1, 'the signature check came from the cache');
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, {
      error: 'invalid_request',
      error_description: 'The pod this subject token was issued to no longer exists; a token copied out of a finished step is not accepted.',
      reason: 'pod_not_found',
    });
  });
});
