import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { assessBrokerJwks, type ExpectedBrokerKeys } from '../../src/tools/doctor/broker-jwks-check.js';
import { assessClockSkew, clockSkewSeconds, type DateSample } from '../../src/tools/doctor/clock-skew.js';
import { check, exitStatusOf, formatCheck, type DoctorCheck } from '../../src/tools/doctor/doctor-check.js';
import { assessIssuerKeys, type IssuerKeysFound } from '../../src/tools/doctor/issuer-keys-check.js';
import { assessPrePublishWindow, prePublishSecondsOf } from '../../src/tools/doctor/pre-publish-window.js';
import { assessSigningKeys } from '../../src/tools/doctor/signing-keys-check.js';
import { computeKeyStates, type KeyTimestamps } from '../../src/server/mint/key-lifecycle.js';

describe('formatCheck and exitStatusOf', () => {
  const cases: readonly { name: string; check: DoctorCheck; line: string }[] = [
    { name: 'OK without a fix', check: check('OK', 'config', 'fine'), line: 'OK   config: fine' },
    { name: 'WARN with a fix', check: check('WARN', 'pre-publish', 'short', 'raise it'), line: 'WARN pre-publish: short -> raise it' },
    { name: 'FAIL with a fix', check: check('FAIL', 'tyk-api orders', 'bad', 'fix it'), line: 'FAIL tyk-api orders: bad -> fix it' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(formatCheck(c.check), c.line));
  }
  it('an undefined fix is left out of the check', () => {
    assert.deepEqual(check('OK', 'a', 'b', undefined), { status: 'OK', name: 'a', message: 'b' });
  });
  it('exit 1 only when something failed', () => {
    assert.equal(exitStatusOf([]), 0);
    assert.equal(exitStatusOf([check('OK', 'a', 'b'), check('WARN', 'a', 'b')]), 0);
    assert.equal(exitStatusOf([check('OK', 'a', 'b'), check('FAIL', 'a', 'b')]), 1);
  });
});

describe('clockSkewSeconds', () => {
  const at = Date.parse('2025-01-31T12:00:00Z');
  const cases: readonly { name: string; sample: DateSample; expected: number | undefined }[] = [
    { name: 'no Date header', sample: { date: null, sentAt: at, receivedAt: at }, expected: undefined },
    { name: 'an unparsable Date header', sample: { date: 'yesterday-ish', sentAt: at, receivedAt: at }, expected: undefined },
    // The header is truncated to the second: the server's time is taken as the middle of that second.
    { name: 'in sync: half a second (the truncation)', sample: { date: 'Fri, 31 Jan 2025 12:00:00 GMT', sentAt: at, receivedAt: at }, expected: 0.5 },
    { name: 'the server ahead by 10 s', sample: { date: 'Fri, 31 Jan 2025 12:00:10 GMT', sentAt: at - 200, receivedAt: at + 200 }, expected: 10.5 },
    { name: 'the server behind by 40 s', sample: { date: 'Fri, 31 Jan 2025 11:59:20 GMT', sentAt: at, receivedAt: at + 1000 }, expected: -40 },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(clockSkewSeconds(c.sample), c.expected));
  }
});

describe('assessClockSkew', () => {
  const sync = 'synchronise the clocks of the broker host and the cluster (NTP, chrony)';
  const cases: readonly { name: string; skew: number | undefined; tolerance: number; expected: DoctorCheck }[] = [
    { name: 'in sync', skew: 0.5, tolerance: 30, expected: check('OK', 'clock c1', 'the issuer\'s clock is 0.5 s ahead of the broker\'s') },
    { name: 'exactly 5 s is still OK', skew: -5, tolerance: 30, expected: check('OK', 'clock c1', 'the issuer\'s clock is 5 s behind the broker\'s') },
    {
      name: 'above 5 s: WARN',
      skew: 12.34,
      tolerance: 30,
      expected: check('WARN', 'clock c1', 'the issuer\'s clock is 12.3 s ahead of the broker\'s (tolerated up to 30 s, but Tyk tolerates only a few)', sync),
    },
    {
      name: 'above clockSkewSeconds: FAIL',
      skew: -31,
      tolerance: 30,
      expected: check(
        'FAIL',
        'clock c1',
        'the issuer\'s clock is 31 s behind the broker\'s, more than its clockSkewSeconds (30): fresh subject tokens are refused or expired ones accepted',
        sync,
      ),
    },
    {
      name: 'a tolerance under 5 s fails before it would warn',
      skew: 4,
      tolerance: 3,
      expected: check('FAIL', 'clock c1', 'the issuer\'s clock is 4 s ahead of the broker\'s, more than its clockSkewSeconds (3): fresh subject tokens are refused or expired ones accepted', sync),
    },
    {
      name: 'no Date: WARN',
      skew: undefined,
      tolerance: 30,
      expected: check('WARN', 'clock c1', 'the issuer sent no usable Date header, so the clocks could not be compared', 'check the broker host\'s time sync (NTP) by other means'),
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(assessClockSkew('c1', c.skew, c.tolerance), c.expected));
  }
});

describe('assessIssuerKeys', () => {
  const rsa: JWK = { kty: 'RSA', kid: 'r1', n: 'x', e: 'AQAB' };
  const ec: JWK = { kty: 'EC', kid: 'e1', crv: 'P-256', x: 'x', y: 'y' };
  const found = (keys: JWK[], unusable: string[] = []): IssuerKeysFound => ({ issuerName: 'c1', source: 'https://c1/jwks', keys, unusable });
  const cases: readonly { name: string; found: IssuerKeysFound; expected: DoctorCheck }[] = [
    { name: 'two usable keys', found: found([rsa, ec]), expected: check('OK', 'issuer c1', '2 key(s) from https://c1/jwks (r1, e1)') },
    {
      name: 'more than three kids are counted, not listed',
      found: found(['a', 'b', 'c', 'd', 'e'].map((kid) => ({ ...rsa, kid }))),
      expected: check('OK', 'issuer c1', '5 key(s) from https://c1/jwks (a, b, c, +2 more)'),
    },
    {
      name: 'an empty key set',
      found: found([]),
      expected: check('FAIL', 'issuer c1', 'https://c1/jwks has no usable verification key (0 key(s))', 'point jwksUri or jwksFile at the issuer\'s key set (kubectl get --raw /openid/v1/jwks)'),
    },
    {
      name: 'only symmetric keys',
      found: found([{ kty: 'oct', kid: 'h1', k: 'c2VjcmV0' }]),
      expected: check('FAIL', 'issuer c1', 'https://c1/jwks has no usable verification key (1 key(s))', 'point jwksUri or jwksFile at the issuer\'s key set (kubectl get --raw /openid/v1/jwks)'),
    },
    {
      name: 'a key the runtime cannot import',
      found: found([rsa, ec], ['e1']),
      expected: check('WARN', 'issuer c1', '1 key(s) from https://c1/jwks (r1); cannot use e1', 'tokens signed with those keys will be refused; check the issuer\'s key types'),
    },
    {
      name: 'private key material is a FAIL',
      found: found([rsa, { ...ec, d: 'secret' }]),
      expected: check('FAIL', 'issuer c1', 'https://c1/jwks publishes private key material (e1)', 'rotate those keys at the issuer now; a published private key lets anyone mint subject tokens'),
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(assessIssuerKeys(c.found), c.expected));
  }
});

describe('assessSigningKeys', () => {
  const now = Date.parse('2025-01-31T12:00:00Z');
  const settings = { prePublishSeconds: 300, maxTokenTtlSeconds: 3600, retireMarginSeconds: 60 };
  const key = (kid: string, secondsAgo: number): KeyTimestamps => ({ kid, alg: 'ES256', createdAt: now - secondsAgo * 1000 });
  const cases: readonly { name: string; keys: KeyTimestamps[]; expected: DoctorCheck }[] = [
    { name: 'one key past its window', keys: [key('k1', 3600)], expected: check('OK', 'signing-keys', '1 published key(s) in /keys: active k1 (ES256)') },
    {
      name: 'a pending key is named with the time it signs from',
      keys: [key('k1', 3600), key('k2', 60)],
      expected: check('OK', 'signing-keys', '2 published key(s) in /keys: active k1 (ES256); pending k2 (signs from 2025-01-31T12:04:00Z)'),
    },
    {
      name: 'a superseded key is retiring',
      keys: [key('k1', 7200), key('k2', 3600)],
      expected: check('OK', 'signing-keys', '2 published key(s) in /keys: active k2 (ES256); retiring k1'),
    },
    {
      name: 'the only key is younger than the window: it signs early, WARN',
      keys: [key('k1', 10)],
      expected: check(
        'WARN',
        'signing-keys',
        '1 published key(s) in /keys: active k1 (ES256); k1 signs before it has been published for signing.prePublishSeconds, so Tyk may refuse its tokens until its cached JWKS expires',
        'expect refusals until 2025-01-31T12:04:50Z at the latest; next time add keys ahead of need',
      ),
    },
    { name: 'no key', keys: [], expected: check('FAIL', 'signing-keys', 'no key in /keys can sign', 'create one: token-broker keys generate --alg ALG --out DIR') },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(assessSigningKeys('/keys', computeKeyStates(c.keys, now, settings)), c.expected));
  }
});

describe('assessPrePublishWindow', () => {
  const raise = (cache: number) => `set signing.prePublishSeconds above ${cache} plus the time a Secret update takes to reach every replica`;
  const cases: readonly { name: string; signing: unknown; expected: DoctorCheck }[] = [
    {
      name: 'the defaults: 300 s over 240 s',
      signing: { prePublishSeconds: 300, tykJwksCacheSeconds: 240 },
      expected: check('OK', 'pre-publish', 'signing.prePublishSeconds 300 s vs Tyk\'s JWKS cache (signing.tykJwksCacheSeconds) 240 s: new keys are published before they sign'),
    },
    {
      name: 'shorter than the cache: WARN',
      signing: { prePublishSeconds: 100, tykJwksCacheSeconds: 240 },
      expected: check(
        'WARN',
        'pre-publish',
        'signing.prePublishSeconds 100 s vs Tyk\'s JWKS cache (signing.tykJwksCacheSeconds) 240 s: a new key can sign before Tyk has fetched it, and Tyk refuses its tokens ("Key not authorized") until its cached JWKS expires',
        raise(240),
      ),
    },
    {
      name: 'equal is not longer: WARN',
      signing: { prePublishSeconds: 240, tykJwksCacheSeconds: 240 },
      expected: check(
        'WARN',
        'pre-publish',
        'signing.prePublishSeconds 240 s vs Tyk\'s JWKS cache (signing.tykJwksCacheSeconds) 240 s: a new key can sign before Tyk has fetched it, and Tyk refuses its tokens ("Key not authorized") until its cached JWKS expires',
        raise(240),
      ),
    },
    {
      name: 'other names for the same settings are read',
      signing: { publishBeforeSigningSeconds: 600, jwksCacheSeconds: 240 },
      expected: check('OK', 'pre-publish', 'signing.publishBeforeSigningSeconds 600 s vs Tyk\'s JWKS cache (signing.jwksCacheSeconds) 240 s: new keys are published before they sign'),
    },
    {
      name: 'settings it cannot find: WARN, no crash',
      signing: { prePublishSeconds: '300' },
      expected: check(
        'WARN',
        'pre-publish',
        'cannot find the pre-publish window and Tyk\'s JWKS cache lifetime in the signing section',
        'compare the key pre-publish window with Tyk\'s jwks.cache.timeout by hand',
      ),
    },
    {
      name: 'no signing section at all',
      signing: undefined,
      expected: check(
        'WARN',
        'pre-publish',
        'cannot find the pre-publish window and Tyk\'s JWKS cache lifetime in the signing section',
        'compare the key pre-publish window with Tyk\'s jwks.cache.timeout by hand',
      ),
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(assessPrePublishWindow(c.signing), c.expected));
  }
  it('prePublishSecondsOf reads the window under any known name', () => {
    assert.equal(prePublishSecondsOf({ prePublishSeconds: 300 }), 300);
    assert.equal(prePublishSecondsOf({ prePublishWindowSeconds: 90 }), 90);
    assert.equal(prePublishSecondsOf({}), undefined);
    assert.equal(prePublishSecondsOf(null), undefined);
  });
});

describe('assessBrokerJwks', () => {
  const url = 'https://broker/.well-known/jwks.json';
  const expected: ExpectedBrokerKeys = { active: 'a1', pending: ['p1'], retiring: ['r1'] };
  const cases: readonly { name: string; served: string[]; expected: ExpectedBrokerKeys | undefined; result: DoctorCheck }[] = [
    { name: 'every key published', served: ['p1', 'a1', 'r1'], expected, result: check('OK', 'broker-jwks', `${url} publishes the active key a1 (3 key(s))`) },
    {
      name: 'the active key missing: FAIL',
      served: ['old'],
      expected,
      result: check(
        'FAIL',
        'broker-jwks',
        `${url} does not publish the active key a1 (it serves old)`,
        'make the broker read the same signing.keysDir (same Secret), or wait for it to re-read the directory',
      ),
    },
    {
      name: 'no keys at all: FAIL',
      served: [],
      expected,
      result: check(
        'FAIL',
        'broker-jwks',
        `${url} does not publish the active key a1 (it serves no keys)`,
        'make the broker read the same signing.keysDir (same Secret), or wait for it to re-read the directory',
      ),
    },
    {
      name: 'a pending key not yet published: WARN',
      served: ['a1', 'r1'],
      expected,
      result: check('WARN', 'broker-jwks', `${url} publishes the active key a1 but not p1 from the keys directory`, 'check that every replica has the current Secret; Tyk refuses tokens of keys it cannot find'),
    },
    {
      name: 'keys directory unreadable: WARN with what is served',
      served: ['a1'],
      expected: undefined,
      result: check('WARN', 'broker-jwks', `${url} serves 1 key(s); the keys directory could not be read, so which one should sign is unknown`),
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(assessBrokerJwks(url, c.served, c.expected), c.result));
  }
});
