import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate-config.js';
import { identityFromUnverifiedToken, UNVERIFIED_NOTE } from '../../src/explain/unverified-token.js';
import type { BrokerConfig } from '../../src/config/schema.js';

const NOW = 1_767_225_600;
const ISSUER_URL = 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123';

function config(kubernetes: boolean): BrokerConfig {
  const result = validateConfig(
    {
      server: { publicUrl: 'https://token-broker.test' },
      issuers: [{ name: 'eks', issuer: ISSUER_URL, audiences: ['tyk-token-broker'], clockSkewSeconds: 30, ...(kubernetes && { kubernetes: { enabled: true } }) }],
      rules: [{ name: 'all', match: {}, policies: ['p'] }],
    },
    { requireKeysDir: false },
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

/** A JWT-shaped string: nobody verifies it, so the signature is just bytes. */
function jwt(payload: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'RS256', kid: 'k' })}.${encode(payload)}.c2lnbmF0dXJl`;
}

const CLAIMS = {
  aud: ['tyk-token-broker'],
  exp: NOW + 600,
  iat: NOW - 60,
  iss: ISSUER_URL,
  sub: 'system:serviceaccount:ci:wf-runner',
  'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'wf-runner', uid: 'sa-uid' }, pod: { name: 'orders-sync-x7k2p-call-api-3149217812', uid: 'pod-uid' }, node: { name: 'ip-10-0-1-23' } },
};

describe('identityFromUnverifiedToken: offline, and says so', () => {
  it('reads the identity of a projected token found by exact iss, with the unverified note first', () => {
    const result = identityFromUnverifiedToken(`${jwt(CLAIMS)}\n`, config(false), NOW);
    assert.equal(result.kind, 'identity');
    assert.deepEqual(result.notes, [UNVERIFIED_NOTE]);
    assert.match(UNVERIFIED_NOTE, /^unverified: decoded offline\./);
    if (result.kind !== 'identity') return;
    assert.deepEqual(
      [result.identity.issuerName, result.identity.namespace, result.identity.serviceAccount, result.identity.podName, result.identity.nodeName, result.identity.cluster],
      ['eks', 'ci', 'wf-runner', 'orders-sync-x7k2p-call-api-3149217812', 'ip-10-0-1-23', undefined],
    );
  });

  it('notes what POST /token would check: expiry, audience, and that no Kubernetes API was asked', () => {
    const result = identityFromUnverifiedToken(jwt({ ...CLAIMS, exp: NOW - 900, aud: ['kubernetes'] }), config(true), NOW);
    assert.deepEqual(result.notes, [
      UNVERIFIED_NOTE,
      'the token expired 15m ago: POST /token would refuse it as expired',
      'the token\'s audience [kubernetes] is none of issuer "eks"\'s [tyk-token-broker]: POST /token would refuse it (audience_mismatch)',
      'no Kubernetes API was asked: rules that read labels, pod annotations or the workflow cannot match here (use --identity with a fixture to supply them)',
    ]);
  });

  const refusals: readonly { name: string; token: string; reason: string; description: string }[] = [
    { name: 'not a JWT', token: 'not-a-jwt', reason: 'malformed_token', description: 'The token is not a JWT with a JSON payload.' },
    {
      name: 'an issuer matched only without its trailing slash',
      token: jwt({ ...CLAIMS, iss: `${ISSUER_URL}/` }),
      reason: 'unknown_issuer',
      description: `The token's issuer "${ISSUER_URL}/" is not configured (issuers must match exactly, trailing slash included).`,
    },
    {
      name: 'a legacy Secret-based token',
      token: jwt({ iss: 'kubernetes/serviceaccount', 'kubernetes.io/serviceaccount/namespace': 'ci' }),
      reason: 'legacy_token',
      description: 'The token is a legacy Secret-based service-account token (no expiry, no audience); the broker refuses it.',
    },
    { name: 'no iss', token: jwt({ sub: 'x' }), reason: 'missing_claim', description: 'The token has no "iss" claim.' },
    {
      name: 'no kubernetes.io claim for a kubernetes issuer',
      token: jwt({ ...CLAIMS, 'kubernetes.io': undefined }),
      reason: 'missing_claim',
      description: 'The subject token lacks the "kubernetes.io" claim of a Kubernetes service-account token.',
    },
  ];
  for (const c of refusals) {
    it(`refused: ${c.name}`, () => {
      const result = identityFromUnverifiedToken(c.token, config(false), NOW);
      assert.equal(result.kind, 'refused');
      if (result.kind !== 'refused') return;
      assert.deepEqual([result.error.code, result.error.description], [c.reason, c.description]);
      assert.equal(result.notes[0], UNVERIFIED_NOTE);
    });
  }
});
