import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { useHarness, PUBLIC_URL, type Harness } from '../support/broker-harness.js';
import { GATEWAY, resourceConfig } from '../support/resource-config.js';
import { expectMinted, expectRefusal, memoryCache } from '../security/refusal.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';

// RFC 8707 `resource` at POST /token, through the real app: the token carries only the granted policies that
// open the named API; anything else is invalid_target with a stable reason.

async function verifyMinted(h: Harness, token: string): Promise<JWTPayload> {
  const jwks = (await h.http.get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet;
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: 'tyk', currentDate: new Date(h.clock.now()) });
  return payload;
}

const invalidTarget = (reason: 'unknown_resource' | 'resource_not_granted' | 'malformed_resource', description: string) =>
  ({ status: 400, error: 'invalid_target', reason, description }) as const;

describe('POST /token with resource', () => {
  const h = useHarness({ config: resourceConfig, warmUp: true });

  it('narrows to the granted policies opening the named API: pol, scope and the response agree', async () => {
    const subject = await h.issuer.projectedToken();
    const res = await expectMinted(h, () => h.exchange(subject, { resource: `${GATEWAY}/payments/v1/orders` }));
    assert.equal(res.body.scope, 'payments-read payments-write');
    const claims = await verifyMinted(h, res.body.access_token);
    assert.deepEqual([claims.pol, claims.scope, claims.sub], ['payments-read', 'payments-read payments-write', 'system:serviceaccount:payments:argo-runner']);

    const status = await expectMinted(h, () => h.exchange(subject, { resource: `${GATEWAY}/status/` }));
    assert.equal(status.body.scope, 'status-read');
    assert.deepEqual([(await verifyMinted(h, status.body.access_token)).scope], ['status-read']);
  });

  it('the listen path without its final "/", and scheme and host in upper case, name the same API', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments-dev', serviceAccount: 'argo-ci' });
    const res = await expectMinted(h, () => h.exchange(subject, { resource: 'HTTPS://GATEWAY.Example.com/status' }));
    assert.equal(res.body.scope, 'status-read');
  });

  it('resource and scope: the intersection', async () => {
    const subject = await h.issuer.projectedToken();
    const res = await expectMinted(h, () => h.exchange(subject, { scope: 'payments-write status-read', resource: `${GATEWAY}/payments/` }));
    assert.equal(res.body.scope, 'payments-write');
    const claims = await verifyMinted(h, res.body.access_token);
    assert.deepEqual([claims.pol, claims.scope], ['payments-write', 'payments-write']);
  });

  it('resource and a scope with no policy opening its API -> invalid_target resource_not_granted', async () => {
    const subject = await h.issuer.projectedToken();
    await expectRefusal(
      h,
      () => h.exchange(subject, { scope: 'status-read', resource: `${GATEWAY}/payments/` }),
      invalidTarget('resource_not_granted', 'This workload is granted no policy that opens the API the "resource" parameter names.'),
    );
  });

  it('an API no granted policy opens -> invalid_target resource_not_granted, the rules\' verdicts logged', async () => {
    const subject = await h.issuer.projectedToken();
    await expectRefusal(
      h,
      () => h.exchange(subject, { resource: `${GATEWAY}/payments-admin/refunds` }).set('X-Request-Id', 'resource-admin'),
      invalidTarget('resource_not_granted', 'This workload is granted no policy that opens the API the "resource" parameter names.'),
    );
    const line = h.logs.lines.find((entry) => entry.requestId === 'resource-admin' && entry.audit !== true);
    assert.ok(line !== undefined);
    assert.ok(Array.isArray(line.verdicts), 'the log explains the rules');
  });

  it('a URL no configured API is served at -> invalid_target unknown_resource', async () => {
    const subject = await h.issuer.projectedToken();
    for (const resource of [`${GATEWAY}/ledger/`, 'https://other.example/payments/', `${GATEWAY}/`]) {
      await expectRefusal(h, () => h.exchange(subject, { resource }), invalidTarget('unknown_resource', 'The "resource" parameter names no API this broker issues tokens for.'));
    }
  });

  const malformed: readonly { name: string; resource: string; description: string }[] = [
    { name: 'a fragment', resource: `${GATEWAY}/payments/#x`, description: 'The "resource" parameter must not have a fragment (RFC 8707).' },
    { name: 'a relative reference', resource: '/payments/', description: 'The "resource" parameter must be an absolute URI, such as https://gateway.example.com/orders/.' },
    { name: 'userinfo', resource: 'https://ci@gateway.example.com/payments/', description: 'The "resource" parameter must not carry a user name or password.' },
    { name: 'a query', resource: `${GATEWAY}/payments/?all`, description: 'The "resource" parameter must not have a query: a token is narrowed to an API by its path alone.' },
  ];
  for (const c of malformed) {
    it(`a resource with ${c.name} -> invalid_target malformed_resource`, async () => {
      const subject = await h.issuer.projectedToken();
      await expectRefusal(h, () => h.exchange(subject, { resource: c.resource }), invalidTarget('malformed_resource', c.description));
    });
  }

  it('resource twice -> invalid_request, saying to exchange once per API', async () => {
    const subject = await h.issuer.projectedToken();
    const body = new URLSearchParams([
      ['grant_type', GRANT_TYPE_TOKEN_EXCHANGE],
      ['subject_token_type', TOKEN_TYPE_JWT],
      ['subject_token', subject],
      ['resource', `${GATEWAY}/payments/`],
      ['resource', `${GATEWAY}/status/`],
    ]).toString();
    await expectRefusal(h, () => h.http.post('/token').type('form').send(body), {
      status: 400,
      error: 'invalid_request',
      reason: 'invalid_request',
      description: 'The "resource" parameter must be given at most once: exchange once per API.',
    });
  });

  it('the cache never hands a narrowed token to a broader request, nor a broad one to a narrowed request', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-cache' });
    const broad = await expectMinted(h, () => h.exchange(subject));
    const narrow = await expectMinted(h, () => h.exchange(subject, { resource: `${GATEWAY}/status/` }));
    assert.notEqual(narrow.body.access_token, broad.body.access_token);
    assert.equal(decodeJwt(broad.body.access_token).scope, 'payments-read payments-write status-read');
    assert.equal(decodeJwt(narrow.body.access_token).scope, 'status-read');

    // Each is served from the cache to its own request shape only.
    const cache = memoryCache(h);
    const size = cache.size;
    const broadAgain = await h.exchange(subject).expect(200);
    const narrowAgain = await h.exchange(subject, { resource: `${GATEWAY}/status/v2` }).expect(200);
    assert.equal(broadAgain.body.access_token, broad.body.access_token);
    assert.equal(narrowAgain.body.access_token, narrow.body.access_token, 'another path of the same API: the same narrowed token');
    assert.equal(cache.size, size);

    // The narrowed set equals what scope=status-read asks for: the same claims, so rightly the same token.
    const scoped = await h.exchange(subject, { scope: 'status-read' }).expect(200);
    assert.equal(scoped.body.access_token, narrow.body.access_token);
  });

  it('counts each refusal by its reason in /metrics', async () => {
    const metrics = (await h.http.get('/metrics').expect(200)).text;
    for (const reason of ['resource_not_granted', 'unknown_resource', 'malformed_resource']) {
      assert.match(metrics, new RegExp(`token_broker_exchanges_total\\{outcome="rejected",reason="${reason}",issuer="[^"]*"\\} [1-9]`));
    }
  });
});

describe('POST /token with resource, without an apis block', () => {
  const h = useHarness({ warmUp: true });

  it('refuses every resource with invalid_target unknown_resource: never ignored', async () => {
    const subject = await h.issuer.projectedToken();
    await expectRefusal(
      h,
      () => h.exchange(subject, { resource: `${GATEWAY}/payments/` }),
      invalidTarget('unknown_resource', 'This broker accepts no "resource" parameter: no API is configured for it; use "audience" and "scope".'),
    );
  });
});
