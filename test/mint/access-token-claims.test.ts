import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../src/server/errors.js';
import { buildAccessTokenClaims, renderSubject } from '../../src/server/mint/access-token-claims.js';
import type { Grant } from '../../src/server/rules/decide-grant.js';
import { FORBIDDEN_MINTED_CLAIMS } from '../../src/server/protocol.js';
import type { TokensConfig } from '../../src/server/config/schema.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';

const TOKENS: TokensConfig = {
  audience: 'tyk',
  defaultTtlSeconds: 600,
  maxTtlSeconds: 3600,
  subject: 'system:serviceaccount:{namespace}:{serviceAccount}',
  policyClaim: 'pol',
  scopeClaim: 'scope',
  contextClaim: 'workload',
  format: 'jwt',
};

const CONTEXT = { issuer: 'https://token-broker.test', nowSeconds: 1_767_225_600, jti: '7c1f0d52-0000-4000-8000-000000000000' };

const FULL: WorkloadIdentity = {
  issuerName: 'cluster-a',
  issuer: 'https://cluster-a.example',
  subject: 'system:serviceaccount:payments:argo-runner',
  namespace: 'payments',
  serviceAccount: 'argo-runner',
  serviceAccountUid: 'sa-uid',
  podName: 'orders-sync-x7k2p-call-api-3149217812',
  podUid: 'pod-uid',
  nodeName: 'node-a',
  // Claims a subject token may carry that must never be copied into the minted token.
  claims: { client_id: 'leaked', cid: 'leaked', clientId: 'leaked', azp: 'leaked', sub: 'system:serviceaccount:payments:argo-runner' },
};

const BARE: WorkloadIdentity = { issuerName: 'idp', issuer: 'https://idp.example', subject: 'robot-7', claims: {} };

function grant(overrides: Partial<Grant> = {}): Grant {
  return { identity: FULL, policies: ['payments-read', 'payments-write', 'status-read'], audience: 'tyk', ttlSeconds: 300, ...overrides };
}

function assertMissingClaim(run: () => unknown, variable: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, 'missing_claim');
    assert.equal(error.oauthError, 'invalid_request');
    assert.equal(error.status, 400);
    assert.deepEqual(error.facts, { claim: variable });
    return true;
  });
}

describe('buildAccessTokenClaims', () => {
  it('builds every claim Tyk reads, and nothing else', () => {
    assert.deepEqual(buildAccessTokenClaims(grant(), TOKENS, CONTEXT), {
      iss: 'https://token-broker.test',
      sub: 'system:serviceaccount:payments:argo-runner',
      aud: 'tyk',
      iat: CONTEXT.nowSeconds,
      nbf: CONTEXT.nowSeconds,
      exp: CONTEXT.nowSeconds + 300,
      jti: CONTEXT.jti,
      pol: 'payments-read',
      scope: 'payments-read payments-write status-read',
      workload: {
        issuer: 'cluster-a',
        namespace: 'payments',
        serviceAccount: 'argo-runner',
        pod: 'orders-sync-x7k2p-call-api-3149217812',
      },
    });
  });

  it('uses the configured claim names for policy, scope and context', () => {
    const tokens: TokensConfig = { ...TOKENS, policyClaim: 'tyk_policy', scopeClaim: 'permissions', contextClaim: 'k8s' };
    const claims = buildAccessTokenClaims(grant({ policies: ['only'] }), tokens, CONTEXT);
    assert.equal(claims.tyk_policy, 'only');
    assert.equal(claims.permissions, 'only');
    assert.deepEqual(claims.k8s, { issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'argo-runner', pod: 'orders-sync-x7k2p-call-api-3149217812' });
    for (const defaultName of ['pol', 'scope', 'workload']) assert.equal(defaultName in claims, false, `${defaultName} is not emitted`);
  });

  const ttls = [60, 300, 3600, 86400];
  for (const ttlSeconds of ttls) {
    it(`always sets exp = iat + ttl (${ttlSeconds} s)`, () => {
      const claims = buildAccessTokenClaims(grant({ ttlSeconds }), TOKENS, CONTEXT);
      assert.equal(typeof claims.exp, 'number');
      assert.equal(claims.exp, CONTEXT.nowSeconds + ttlSeconds);
      assert.equal(claims.iat, CONTEXT.nowSeconds);
      assert.equal(claims.nbf, CONTEXT.nowSeconds);
    });
  }

  it('never emits a claim Tyk treats as an OAuth client id, whatever the subject token carried', () => {
    const tokens: TokensConfig = { ...TOKENS, subject: '{sub}' };
    for (const identity of [FULL, BARE]) {
      const claims = buildAccessTokenClaims(grant({ identity }), tokens, CONTEXT);
      for (const forbidden of [...FORBIDDEN_MINTED_CLAIMS, 'client_id', 'cid', 'clientId']) {
        assert.equal(forbidden in claims, false, `${forbidden} is not emitted`);
      }
      assert.equal('azp' in claims, false);
      assert.equal(JSON.stringify(claims).includes('leaked'), false);
    }
  });

  it('leaves out context fields the identity does not carry', () => {
    const claims = buildAccessTokenClaims(grant({ identity: BARE }), { ...TOKENS, subject: '{issuer}:{sub}' }, CONTEXT);
    assert.deepEqual(claims.workload, { issuer: 'idp' });
    assert.equal(claims.sub, 'idp:robot-7');
  });

  it('carries the requested audience', () => {
    assert.equal(buildAccessTokenClaims(grant({ audience: 'tyk-internal' }), TOKENS, CONTEXT).aud, 'tyk-internal');
  });

  it('throws missing_claim when the sub template needs a variable the identity lacks', () => {
    assertMissingClaim(() => buildAccessTokenClaims(grant({ identity: BARE }), TOKENS, CONTEXT), 'namespace');
  });
});

describe('renderSubject', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['system:serviceaccount:{namespace}:{serviceAccount}', 'system:serviceaccount:payments:argo-runner'],
    ['{issuer}/{namespace}/{serviceAccount}', 'cluster-a/payments/argo-runner'],
    ['{pod}', 'orders-sync-x7k2p-call-api-3149217812'],
    ['{sub}', 'system:serviceaccount:payments:argo-runner'],
    ['wf:{namespace}:{pod}', 'wf:payments:orders-sync-x7k2p-call-api-3149217812'],
    ['{namespace}{namespace}', 'paymentspayments'],
    ['fixed-identity', 'fixed-identity'],
    ['{ namespace }', '{ namespace }'], // not a variable: the name must be a bare word
    ['{}', '{}'],
  ];
  for (const [template, expected] of cases) {
    it(`renders ${JSON.stringify(template)}`, () => {
      assert.equal(renderSubject(template, FULL), expected);
    });
  }

  it('does not expand variables inside substituted values', () => {
    const sneaky: WorkloadIdentity = { ...BARE, subject: '{issuer}' };
    assert.equal(renderSubject('{sub}', sneaky), '{issuer}');
  });

  const missing: readonly (readonly [string, string])[] = [
    ['{namespace}', 'namespace'],
    ['{serviceAccount}', 'serviceAccount'],
    ['{pod}', 'pod'],
    ['{issuer}:{pod}', 'pod'],
    ['{unknown}', 'unknown'],
    // Names of Object.prototype members are not template variables.
    ['{constructor}', 'constructor'],
    ['{toString}', 'toString'],
    ['{__proto__}', '__proto__'],
  ];
  for (const [template, variable] of missing) {
    it(`throws missing_claim for ${template} when the identity lacks it`, () => {
      assertMissingClaim(() => renderSubject(template, BARE), variable);
    });
  }
});
