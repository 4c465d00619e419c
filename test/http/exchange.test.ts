import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { useHarness, PUBLIC_URL } from '../support/broker-harness.js';
import { TOKEN_TYPE_JWT } from '../../src/server/protocol.js';

describe('POST /token: a successful exchange', () => {
  const h = useHarness();

  it('mints a token Tyk accepts: kid in the broker JWKS, ECDSA, exp, policy claim, no client id claims', async () => {
    const subject = await h.issuer.projectedToken();
    const res = await h.exchange(subject).expect(200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.body.issued_token_type, TOKEN_TYPE_JWT);
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.expires_in, 300);
    assert.equal(res.body.scope, 'payments-read payments-write status-read');

    const jwks = (await h.http.get('/.well-known/jwks.json').expect(200)).body;
    const header = decodeProtectedHeader(res.body.access_token);
    assert.equal(typeof header.kid, 'string');
    assert.equal(header.alg, 'ES256');
    assert.equal(header.typ, 'JWT');
    assert.ok(jwks.keys.some((k: { kid: string }) => k.kid === header.kid), 'kid is published');
    const { payload } = await jwtVerify(res.body.access_token, createLocalJWKSet(jwks), {
      issuer: PUBLIC_URL,
      audience: 'tyk',
      currentDate: new Date(h.clock.now()),
    });
    assert.equal(payload.sub, 'system:serviceaccount:payments:argo-runner');
    assert.equal(payload.pol, 'payments-read');
    assert.equal(payload.scope, 'payments-read payments-write status-read');
    assert.equal(payload.exp! - payload.iat!, 300);
    assert.deepEqual(payload.workload, {
      issuer: 'test-cluster',
      namespace: 'payments',
      serviceAccount: 'argo-runner',
      pod: 'orders-sync-x7k2p-call-api-3149217812',
    });
    for (const forbidden of ['client_id', 'cid', 'clientId']) assert.equal(forbidden in payload, false);
  });
});
