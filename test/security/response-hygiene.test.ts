import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useHarness, type Harness } from '../support/broker-harness.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { assertErrorShape, auditCount, memoryCache, type ExpectedRefusal, type HttpResult } from './refusal.js';

/*
 * Response hygiene: every error the broker sends, whatever produced it (the router, the body parser, the form
 * parser, verification, a dependency), has exactly {error, error_description, reason} with nothing internal in it,
 * Cache-Control: no-store, X-Content-Type-Options: nosniff and no X-Powered-By; successful /token responses are
 * no-store too. The 500 path (a bug) is covered by test/http/openapi.test.ts ("500 server_error with nothing
 * internal in the body") and 503 no_signing_key there too; the headers of the non-error routes by
 * test/http/token-endpoint.test.ts ("HTTP surface").
 */

type Send = (h: Harness) => PromiseLike<HttpResult>;

const form = (subjectToken: string) => ({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken });

const METHOD_NOT_ALLOWED: ExpectedRefusal = { status: 405, error: 'invalid_request', reason: 'method_not_allowed', description: 'Use POST for the token endpoint.' };
const NOT_FOUND: ExpectedRefusal = { status: 404, error: 'invalid_request', reason: 'not_found', description: 'No such endpoint.' };

describe('security: response hygiene', { timeout: 60_000 }, () => {
  const h = useHarness({ warmUp: true });

  const errors: ReadonlyArray<readonly [string, Send, ExpectedRefusal]> = [
    ['POST /token without a body', (x) => x.http.post('/token'), { status: 400, error: 'invalid_request', reason: 'invalid_request', description: 'The "grant_type" parameter is required.' }],
    [
      'POST /token with an expired subject token',
      async (x) => x.exchange(await x.issuer.projectedToken({ lifetimeSeconds: 600, offsetSeconds: -4000 })),
      { status: 400, error: 'invalid_request', reason: 'expired' },
    ],
    [
      'POST /token with a JSON body',
      (x) => x.http.post('/token').set('Content-Type', 'application/json').send('{"grant_type":"x"}'),
      { status: 400, error: 'invalid_request', reason: 'unsupported_media_type', description: 'The request body must be application/x-www-form-urlencoded (RFC 8693).' },
    ],
    [
      'POST /token with a 70 KiB body',
      (x) => x.exchange('x'.repeat(70 * 1024)),
      { status: 413, error: 'invalid_request', reason: 'request_too_large', description: 'The request body is too large (at most 64 KiB and 32 parameters).' },
    ],
    [
      'POST /token with a scope outside the grant',
      async (x) => x.exchange(await x.issuer.projectedToken(), { scope: 'root' }),
      { status: 400, error: 'invalid_target', reason: 'scope_not_granted', description: 'The requested scope includes policies this workload is not granted: root.' },
    ],
    ['GET /token', (x) => x.http.get('/token'), METHOD_NOT_ALLOWED],
    ['PUT /token', (x) => x.http.put('/token').type('form').send(form('a.b.c')), METHOD_NOT_ALLOWED],
    ['DELETE /token', (x) => x.http.delete('/token'), METHOD_NOT_ALLOWED],
    ['PATCH /token', (x) => x.http.patch('/token'), METHOD_NOT_ALLOWED],
    ['OPTIONS /token', (x) => x.http.options('/token'), METHOD_NOT_ALLOWED],
    ['GET /nope', (x) => x.http.get('/nope'), NOT_FOUND],
    ['POST /v1/explain when explain is disabled', (x) => x.http.post('/v1/explain').type('form').send(form('a.b.c')), NOT_FOUND],
    ['GET /%2e%2e/%2e%2e/etc/passwd', (x) => x.http.get('/%2e%2e/%2e%2e/etc/passwd'), NOT_FOUND],
    ['GET /token/..%2f..%2fmetrics', (x) => x.http.get('/token/..%2f..%2fmetrics'), NOT_FOUND],
    ['GET /.well-known/jwks.json/extra', (x) => x.http.get('/.well-known/jwks.json/extra'), NOT_FOUND],
    ['POST /token with Accept: text/html and no body', (x) => x.http.post('/token').set('Accept', 'text/html'), { status: 400, error: 'invalid_request', reason: 'invalid_request' }],
    ['GET /nope with Accept: text/html', (x) => x.http.get('/nope').set('Accept', 'text/html'), NOT_FOUND],
  ];

  for (const [name, send, expected] of errors) {
    it(`${name}: ${expected.status} ${expected.reason}, constant shape, no-store, nosniff, nothing minted`, async () => {
      const audits = auditCount(h);
      const cached = memoryCache(h).size;
      const res = await send(h);
      assertErrorShape(res, expected);
      assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      if (expected.status === 405) assert.equal(res.headers.allow, 'POST');
      assert.equal(auditCount(h), audits);
      assert.equal(memoryCache(h).size, cached);
    });
  }

  it('HEAD /token: 405 with Allow: POST and the error headers, no body', async () => {
    const res = await h.http.head('/token');
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'POST');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
    assert.equal(res.text, undefined);
  });

  it('a successful exchange, JSON: exactly the RFC 8693 members, no-store, Pragma: no-cache, nosniff, no-referrer', async () => {
    const res = await h.exchange(await h.issuer.projectedToken({ podUid: 'hygiene-json' }));
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body as object), ['access_token', 'issued_token_type', 'token_type', 'expires_in', 'scope']);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.pragma, 'no-cache');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  it('a successful exchange, text/plain: the bare token only, with the same headers', async () => {
    const res = await h.exchange(await h.issuer.projectedToken({ podUid: 'hygiene-text' })).set('Accept', 'text/plain');
    assert.equal(res.status, 200);
    assert.match(res.text, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.match(String(res.headers['content-type']), /^text\/plain; charset=utf-8$/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.pragma, 'no-cache');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  it('errors stay JSON for Accept: text/plain', async () => {
    const res = await h.http.post('/token').set('Accept', 'text/plain');
    assertErrorShape(res, { status: 400, error: 'invalid_request', reason: 'invalid_request', description: 'The "grant_type" parameter is required.' });
  });
});

describe('security: response hygiene when a dependency is down', { timeout: 60_000 }, () => {
  const h = useHarness();

  it('the issuer unreachable: 503 temporarily_unavailable with Retry-After, the issuer\'s address not in the body', async () => {
    h.issuer.setAvailable(false);
    const res = await h.exchange(await h.issuer.projectedToken());
    assertErrorShape(res, {
      status: 503,
      error: 'temporarily_unavailable',
      reason: 'issuer_unavailable',
      description: 'The broker cannot load its keys for this issuer yet; retry shortly.',
    });
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(res.text.includes('127.0.0.1'), false);
    assert.equal(auditCount(h), 0);
    assert.equal(memoryCache(h).size, 0);
  });
});
