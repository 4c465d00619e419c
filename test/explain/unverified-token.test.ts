import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { identityFromUnverifiedToken, UNVERIFIED_NOTE } from '../../src/tools/explain/unverified-token.js';
import fc from 'fast-check';
import { checkTemporalClaims } from '../../src/server/issuers/temporal-claims.js';
import type { BrokerError } from '../../src/server/errors.js';
import type { BrokerConfig } from '../../src/server/config/schema.js';

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

  it('notes what POST /token would check: audience, and that no Kubernetes API was asked', () => {
    const result = identityFromUnverifiedToken(jwt({ ...CLAIMS, aud: ['kubernetes'] }), config(true), NOW);
    assert.deepEqual(result.notes, [
      UNVERIFIED_NOTE,
      'the token\'s audience [kubernetes] is none of issuer "eks"\'s [tyk-token-broker]: POST /token would refuse it (audience_mismatch)',
      'no Kubernetes API was asked: rules that read labels, pod annotations or the workflow cannot match here (use --identity with a fixture to supply them)',
    ]);
  });

  it('accepts a token expired less than the issuer\'s skew ago, as the exchange does', () => {
    const result = identityFromUnverifiedToken(jwt({ ...CLAIMS, exp: NOW - 29 }), config(false), NOW);
    assert.equal(result.kind, 'identity');
  });

  it('judges time exactly as the exchange\'s checkTemporalClaims, for any exp/nbf/iat around now', () => {
    fc.assert(
      fc.property(fc.integer({ min: -200, max: 200 }), fc.option(fc.integer({ min: -200, max: 200 })), fc.option(fc.integer({ min: -200, max: 200 })), (exp, nbf, iat) => {
        const claims = { ...CLAIMS, exp: NOW + exp, nbf: nbf === null ? undefined : NOW + nbf, iat: iat === null ? undefined : NOW + iat };
        let exchange: string;
        try {
          checkTemporalClaims(JSON.parse(JSON.stringify(claims)) as Record<string, unknown>, NOW, 30);
          exchange = 'accepted';
        } catch (error) {
          exchange = (error as BrokerError).code;
        }
        const result = identityFromUnverifiedToken(jwt(claims), config(false), NOW);
        assert.equal(result.kind === 'refused' ? result.error.code : 'accepted', exchange);
      }),
      { numRuns: 300 },
    );
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
    {
      name: 'expired 15 minutes ago',
      token: jwt({ ...CLAIMS, exp: NOW - 900, iat: NOW - 4500 }),
      reason: 'expired',
      description:
        'The subject token expired 15m ago. Its lifetime was 1h. This usually means the step read the projected token file once and kept it longer than its lifetime: re-read the file for every call, the kubelet rewrites it before it expires.',
    },
    {
      name: 'expired exactly at the edge of the issuer\'s 30 s skew',
      token: jwt({ ...CLAIMS, exp: NOW - 30, iat: NOW - 630 }),
      reason: 'expired',
      description:
        'The subject token expired 30s ago. Its lifetime was 10m. A few seconds to minutes usually means the node clock and the broker clock disagree, or the token was read just before the kubelet rotated it.',
    },
    { name: 'no exp', token: jwt({ ...CLAIMS, exp: undefined }), reason: 'missing_claim', description: 'The subject token has no "exp" claim; only tokens with an expiry are accepted.' },
    {
      name: 'nbf in the future beyond the skew',
      token: jwt({ ...CLAIMS, nbf: NOW + 120 }),
      reason: 'not_yet_valid',
      description: 'The subject token is not valid for another 2m ("nbf" is in the future; allowed clock skew 30s). The clocks of the issuing cluster and the broker disagree: check NTP on the nodes.',
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
