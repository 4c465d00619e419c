import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../src/server/protocol.js';
import { tykSigningMethod, type TykSigningMethod } from '../../src/tools/tyk-kit/tyk-signing-method.js';
import { brokerJwksUrl, tykJwtValidation } from '../../src/tools/tyk-kit/tyk-jwt-validation.js';
import { tokenProfile } from './token-profile.js';

/** Tyk's families: `ecdsa` verifies ES*, `rsa` verifies RS* and PS*. One row per algorithm the broker signs with. */
const FAMILIES: Readonly<Record<SigningAlgorithm, TykSigningMethod>> = { ES256: 'ecdsa', ES384: 'ecdsa', RS256: 'rsa', PS256: 'rsa' };

describe('tykSigningMethod', () => {
  it('the table covers every signing algorithm', () => {
    assert.deepEqual(Object.keys(FAMILIES).sort(), [...SIGNING_ALGORITHMS].sort());
  });
  for (const [algorithm, family] of Object.entries(FAMILIES) as [SigningAlgorithm, TykSigningMethod][]) {
    it(`${algorithm} -> ${family}`, () => {
      assert.equal(tykSigningMethod(algorithm), family);
    });
  }
});

describe('brokerJwksUrl', () => {
  const cases: readonly [string, string][] = [
    ['https://broker.example', 'https://broker.example/.well-known/jwks.json'],
    ['https://broker.example/', 'https://broker.example/.well-known/jwks.json'],
    ['https://example.com/token-broker', 'https://example.com/token-broker/.well-known/jwks.json'],
    ['http://127.0.0.1:8080/', 'http://127.0.0.1:8080/.well-known/jwks.json'],
  ];
  for (const [publicUrl, expected] of cases) {
    it(`${publicUrl} -> ${expected}`, () => {
      assert.equal(brokerJwksUrl(publicUrl), expected);
    });
  }
});

describe('tykJwtValidation', () => {
  it('defaults: claim names, issuer, audience and one scope per grantable policy', () => {
    assert.deepEqual(tykJwtValidation(tokenProfile()), {
      jwksUrl: 'https://token-broker.example/.well-known/jwks.json',
      signingMethod: 'ecdsa',
      identityBaseField: 'sub',
      policyFieldName: 'pol',
      scopeClaimName: 'scope',
      scopeToPolicy: [
        { scope: 'payments-read', policyId: 'payments-read' },
        { scope: 'payments-write', policyId: 'payments-write' },
        { scope: 'ledger-write', policyId: 'ledger-write' },
      ],
      issuer: 'https://token-broker.example',
      audiences: ['tyk'],
      skewSeconds: 5,
    });
  });

  it('claim names and audiences come from the configuration', () => {
    const jwt = tykJwtValidation(
      tokenProfile({ tokens: { audience: 'gw', allowedAudiences: ['gw', 'gw-internal'], policyClaim: 'tyk_policy', scopeClaim: 'grants' } }),
    );
    assert.equal(jwt.policyFieldName, 'tyk_policy');
    assert.equal(jwt.scopeClaimName, 'grants');
    assert.deepEqual(jwt.audiences, ['gw', 'gw-internal']);
  });

  it('the issuer is publicUrl exactly as minted (trailing slash kept), the JWKS URL has no double slash', () => {
    const jwt = tykJwtValidation(tokenProfile({ publicUrl: 'https://broker.example/' }));
    assert.equal(jwt.issuer, 'https://broker.example/');
    assert.equal(jwt.jwksUrl, 'https://broker.example/.well-known/jwks.json');
  });

  it('templated policies are not mapped', () => {
    const jwt = tykJwtValidation(tokenProfile({ rules: [{ name: 'teams', policies: ['{namespace.labels.team}-read', 'status-read'] }] }));
    assert.deepEqual(jwt.scopeToPolicy, [{ scope: 'status-read', policyId: 'status-read' }]);
  });
});
