import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyTypeForAlgorithm, parseJwks, selectKeys, type KeySelection } from '../../src/server/issuers/jwks-selection.js';
import type { JWK } from 'jose';

// selectKeys never parses key material, so placeholder values are enough to test the choice.
const rsaWithAlg: JWK = { kty: 'RSA', kid: 'rsa-rs256', alg: 'RS256', use: 'sig', n: 'n1', e: 'AQAB' };
const rsaNoAlg: JWK = { kty: 'RSA', kid: 'rsa-any', n: 'n2', e: 'AQAB' };
const ecP256: JWK = { kty: 'EC', kid: 'ec-p256', crv: 'P-256', use: 'sig', x: 'x', y: 'y' };
const ecP384: JWK = { kty: 'EC', kid: 'ec-p384', crv: 'P-384', x: 'x', y: 'y' };
const ecP521: JWK = { kty: 'EC', kid: 'ec-p521', crv: 'P-521', x: 'x', y: 'y' };
const rsaEncryption: JWK = { kty: 'RSA', kid: 'rsa-enc', use: 'enc', n: 'n3', e: 'AQAB' };
const rsaPrivate: JWK = { kty: 'RSA', kid: 'rsa-private', n: 'n4', e: 'AQAB', d: 'secret' };
const symmetric: JWK = { kty: 'oct', kid: 'hmac', k: 'c2VjcmV0' };
// Two keys under one kid (seen during migrations): the one that fits the algorithm wins.
const sharedKidRsa: JWK = { kty: 'RSA', kid: 'shared', n: 'n5', e: 'AQAB' };
const sharedKidEc: JWK = { kty: 'EC', kid: 'shared', crv: 'P-256', x: 'x', y: 'y' };

const KEYS: readonly JWK[] = [rsaWithAlg, rsaNoAlg, ecP256, ecP384, ecP521, rsaEncryption, rsaPrivate, symmetric, sharedKidRsa, sharedKidEc];

describe('keyTypeForAlgorithm', () => {
  const cases: ReadonlyArray<readonly [string, { kty: string; crv?: string } | undefined]> = [
    ['RS256', { kty: 'RSA' }],
    ['RS384', { kty: 'RSA' }],
    ['RS512', { kty: 'RSA' }],
    ['PS256', { kty: 'RSA' }],
    ['PS384', { kty: 'RSA' }],
    ['PS512', { kty: 'RSA' }],
    ['ES256', { kty: 'EC', crv: 'P-256' }],
    ['ES384', { kty: 'EC', crv: 'P-384' }],
    ['ES512', { kty: 'EC', crv: 'P-521' }],
    ['HS256', undefined],
    ['none', undefined],
    ['EdDSA', undefined],
    ['RS1', undefined],
    ['rs256', undefined],
    ['RS256 ', undefined],
  ];
  for (const [alg, expected] of cases) {
    it(`${JSON.stringify(alg)} needs ${expected === undefined ? 'no key this broker accepts' : JSON.stringify(expected)}`, () => {
      assert.deepEqual(keyTypeForAlgorithm(alg), expected);
    });
  }
});

describe('selectKeys', () => {
  const cases: ReadonlyArray<{ name: string; header: { alg: string; kid?: string }; expected: KeySelection }> = [
    { name: 'exact kid, matching alg', header: { alg: 'RS256', kid: 'rsa-rs256' }, expected: { found: true, jwks: [rsaWithAlg] } },
    { name: 'exact kid, key without alg accepts any RSA alg', header: { alg: 'PS384', kid: 'rsa-any' }, expected: { found: true, jwks: [rsaNoAlg] } },
    { name: 'EC P-256 for ES256', header: { alg: 'ES256', kid: 'ec-p256' }, expected: { found: true, jwks: [ecP256] } },
    { name: 'EC P-384 for ES384', header: { alg: 'ES384', kid: 'ec-p384' }, expected: { found: true, jwks: [ecP384] } },
    { name: 'EC P-521 for ES512', header: { alg: 'ES512', kid: 'ec-p521' }, expected: { found: true, jwks: [ecP521] } },
    { name: 'one kid, two keys: the EC one for ES256', header: { alg: 'ES256', kid: 'shared' }, expected: { found: true, jwks: [sharedKidEc] } },
    { name: 'one kid, two keys: the RSA one for RS256', header: { alg: 'RS256', kid: 'shared' }, expected: { found: true, jwks: [sharedKidRsa] } },
    { name: 'no kid: the first key that fits', header: { alg: 'ES384' }, expected: { found: true, jwks: [ecP384] } },
    { name: 'unknown kid', header: { alg: 'RS256', kid: 'nope' }, expected: { found: false, why: 'unknown_kid' } },
    { name: 'kid differs only by case', header: { alg: 'RS256', kid: 'RSA-RS256' }, expected: { found: false, why: 'unknown_kid' } },
    { name: 'kid is a prefix of a real one', header: { alg: 'RS256', kid: 'rsa' }, expected: { found: false, why: 'unknown_kid' } },
    { name: 'RSA key named by kid, ES256 header', header: { alg: 'ES256', kid: 'rsa-rs256' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'JWK alg RS256, header PS256', header: { alg: 'PS256', kid: 'rsa-rs256' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'JWK alg RS256, header RS512', header: { alg: 'RS512', kid: 'rsa-rs256' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'P-256 key, ES384 header (curve mismatch)', header: { alg: 'ES384', kid: 'ec-p256' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'EC key, RS256 header', header: { alg: 'RS256', kid: 'ec-p256' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'encryption key', header: { alg: 'RS256', kid: 'rsa-enc' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'a private key published by mistake is never used', header: { alg: 'RS256', kid: 'rsa-private' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'symmetric key named by kid, HS256 header', header: { alg: 'HS256', kid: 'hmac' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'symmetric key named by kid, RS256 header', header: { alg: 'RS256', kid: 'hmac' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'alg none with a real kid', header: { alg: 'none', kid: 'rsa-rs256' }, expected: { found: false, why: 'incompatible_key' } },
    { name: 'no kid and no key fits HS256', header: { alg: 'HS256' }, expected: { found: false, why: 'unknown_kid' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(selectKeys(KEYS, c.header), c.expected);
    });
  }

  it('an empty key set knows no kid', () => {
    assert.deepEqual(selectKeys([], { alg: 'RS256', kid: 'rsa-rs256' }), { found: false, why: 'unknown_kid' });
    assert.deepEqual(selectKeys([], { alg: 'RS256' }), { found: false, why: 'unknown_kid' });
  });

  it('no kid never selects an encryption, private or symmetric key', () => {
    const unusable = [rsaEncryption, rsaPrivate, symmetric];
    for (const alg of ['RS256', 'PS256', 'HS256']) {
      assert.deepEqual(selectKeys(unusable, { alg }), { found: false, why: 'unknown_kid' }, alg);
    }
  });
});

describe('parseJwks', () => {
  it('keeps every object with a string kty, in order', () => {
    const keys = parseJwks({ keys: [rsaWithAlg, ecP256, symmetric] });
    assert.deepEqual(keys, [rsaWithAlg, ecP256, symmetric]);
  });

  it('drops entries that are not JWKs instead of failing the whole set', () => {
    const keys = parseJwks({ keys: [null, 'RSA', 42, [], { kid: 'no-kty' }, { kty: 7 }, ecP384], other: 'ignored' });
    assert.deepEqual(keys, [ecP384]);
  });

  it('accepts an empty key set', () => {
    assert.deepEqual(parseJwks({ keys: [] }), []);
  });

  const notKeySets: ReadonlyArray<readonly [string, unknown]> = [
    ['null', null],
    ['a string', '{"keys":[]}'],
    ['an array of keys', [rsaWithAlg]],
    ['an object without keys', { jwks_uri: 'http://127.0.0.1/jwks' }],
    ['keys as an object', { keys: { a: rsaWithAlg } }],
    ['a single JWK', rsaWithAlg],
  ];
  for (const [name, document] of notKeySets) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseJwks(document), /not a JWK Set: no "keys" array/);
    });
  }
});
