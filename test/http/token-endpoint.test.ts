import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { useHarness, startHarness, PUBLIC_URL, type Harness } from '../support/broker-harness.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import type { Response } from 'supertest';

/** Asserts the exact RFC 6749 error body and status; returns the description for further checks. */
function assertOAuthError(res: Response, status: number, error: string, reason: string): string {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(res.body as object).sort(), ['error', 'error_description', 'reason']);
  assert.equal(res.body.error, error);
  assert.equal(res.body.reason, reason);
  assert.equal(typeof res.body.error_description, 'string');
  assert.ok(res.body.error_description.length > 0);
  return res.body.error_description as string;
}

/** Verifies a minted token against the broker's own JWKS, at the harness clock. */
async function verifyMinted(h: Harness, token: string, audience = 'tyk'): Promise<JWTPayload> {
  const jwks = (await h.http.get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet;
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience, currentDate: new Date(h.clock.now()) });
  return payload;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

const auditLines = (h: Harness) => h.logs.lines.filter((line) => line.audit === true);
const linesOf = (h: Harness, requestId: string) => h.logs.lines.filter((line) => line.requestId === requestId);
/** The one exchange log line (not the audit record) of a request. */
function exchangeLine(h: Harness, requestId: string): Record<string, unknown> {
  const lines = linesOf(h, requestId).filter((line) => line.audit !== true);
  assert.equal(lines.length, 1, `one exchange log line for ${requestId}`);
  return lines[0] as Record<string, unknown>;
}

/** No captured log line contains any of these tokens. */
function assertNotLogged(h: Harness, tokens: Iterable<string>): void {
  for (const token of tokens) {
    assert.ok(token.length > 20);
    for (const raw of h.logs.raw) assert.equal(raw.includes(token), false, 'a token appeared in a log line');
  }
}

let requestCounter = 0;
const nextRequestId = (label: string) => `${label}-${++requestCounter}`;

describe('POST /token: exchange behaviour', () => {
  let h: Harness;
  const seenTokens = new Set<string>();
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('Accept: text/plain returns the bare access token', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const res = await h.exchange(subject).set('Accept', 'text/plain').expect(200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.text, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    seenTokens.add(res.text);
    const claims = await verifyMinted(h, res.text);
    assert.equal(claims.sub, 'system:serviceaccount:payments:argo-runner');
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('Authorization: Bearer with no body exchanges the header token', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments-dev', serviceAccount: 'argo-ci' });
    seenTokens.add(subject);
    const res = await h.http.post('/token').set('Authorization', `Bearer ${subject}`).expect(200);
    assert.equal(res.body.issued_token_type, TOKEN_TYPE_JWT);
    assert.equal(res.body.token_type, 'Bearer');
    seenTokens.add(res.body.access_token);
    const claims = await verifyMinted(h, res.body.access_token);
    assert.equal(claims.sub, 'system:serviceaccount:payments-dev:argo-ci');
    assert.equal(claims.scope, 'payments-read payments-write status-read');
  });

  it('scope narrows the grant: pol is the first of the narrowed set, scope the narrowed set', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    // Requested out of grant order: the grant order decides which policy is first.
    const res = await h.exchange(subject, { scope: 'status-read payments-write' }).expect(200);
    seenTokens.add(res.body.access_token);
    assert.equal(res.body.scope, 'payments-write status-read');
    const claims = await verifyMinted(h, res.body.access_token);
    assert.equal(claims.pol, 'payments-write');
    assert.equal(claims.scope, 'payments-write status-read');
  });

  it('scope outside the grant -> 400 invalid_target / scope_not_granted, nothing minted', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const requestId = nextRequestId('scope-refused');
    const auditsBefore = auditLines(h).length;
    const res = await h.exchange(subject, { scope: 'status-read admin' }).set('X-Request-Id', requestId);
    assertOAuthError(res, 400, 'invalid_target', 'scope_not_granted');
    assert.equal(auditLines(h).length, auditsBefore, 'no audit record');
    assert.equal(linesOf(h, requestId).some((line) => line.audit === true), false);
    const line = exchangeLine(h, requestId);
    assert.equal(line.outcome, 'rejected');
    assert.equal(line.reason, 'scope_not_granted');
    assert.equal(line.jti, undefined);
  });

  it('audience=tyk-internal (allowed) sets aud', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const res = await h.exchange(subject, { audience: 'tyk-internal' }).expect(200);
    seenTokens.add(res.body.access_token);
    const claims = await verifyMinted(h, res.body.access_token, 'tyk-internal');
    assert.equal(claims.aud, 'tyk-internal');
  });

  it('a disallowed audience -> 400 invalid_target / audience_not_allowed', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const res = await h.exchange(subject, { audience: 'payments-api' });
    assertOAuthError(res, 400, 'invalid_target', 'audience_not_allowed');
  });

  it('an unsupported requested_token_type -> 400 invalid_request / unsupported_token_type', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const res = await h.exchange(subject, { requested_token_type: 'urn:ietf:params:oauth:token-type:saml2' });
    assertOAuthError(res, 400, 'invalid_request', 'unsupported_token_type');
  });

  it('an expired subject token is refused without echoing it', async () => {
    const subject = await h.issuer.projectedToken({ offsetSeconds: -7200, lifetimeSeconds: 3600 });
    seenTokens.add(subject);
    const res = await h.exchange(subject);
    const description = assertOAuthError(res, 400, 'invalid_request', 'expired');
    assert.equal(res.text.includes(subject), false);
    assert.equal(description.includes(subject.split('.')[1] ?? '-'), false);
  });

  it('a body over 64 KiB -> 413 invalid_request / request_too_large', async () => {
    const res = await h.exchange('x'.repeat(70 * 1024));
    assertOAuthError(res, 413, 'invalid_request', 'request_too_large');
  });

  it('a JSON body -> 400 invalid_request / unsupported_media_type', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const res = await h.http
      .post('/token')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subject }));
    assertOAuthError(res, 400, 'invalid_request', 'unsupported_media_type');
  });

  it('grant_type twice -> 400 invalid_request', async () => {
    const subject = await h.issuer.projectedToken();
    seenTokens.add(subject);
    const grant = encodeURIComponent(GRANT_TYPE_TOKEN_EXCHANGE);
    const res = await h.http
      .post('/token')
      .type('form')
      .send(`grant_type=${grant}&grant_type=${grant}&subject_token_type=${encodeURIComponent(TOKEN_TYPE_JWT)}&subject_token=${subject}`);
    assertOAuthError(res, 400, 'invalid_request', 'invalid_request');
  });

  const malformed: readonly string[] = [
    '%',
    'grant_type=%E0%A4%A',
    `grant_type=${encodeURIComponent(GRANT_TYPE_TOKEN_EXCHANGE)}&subject_token_type=${encodeURIComponent(TOKEN_TYPE_JWT)}&subject_token=%ZZ%E0%A4%A`,
    `grant_type=${encodeURIComponent(GRANT_TYPE_TOKEN_EXCHANGE)}&subject_token_type=%FF%FE&subject_token=a.b.c`,
    '=%%%&&==',
  ];
  for (const body of malformed) {
    it(`malformed percent-encoding ${JSON.stringify(body.slice(0, 40))} -> a 4xx OAuth error, not 500`, async () => {
      const res = await h.http.post('/token').type('form').send(body);
      assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
      assert.equal(typeof res.body.error, 'string');
      assert.notEqual(res.body.error, 'server_error');
      assert.equal(typeof res.body.reason, 'string');
    });
  }

  it('every audit line carries the SHA-256 of the returned token, and no log line contains a token', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments-audit' });
    seenTokens.add(subject);
    const requestId = nextRequestId('audit');
    const res = await h.exchange(subject).set('X-Request-Id', requestId).expect(200);
    const token = res.body.access_token as string;
    seenTokens.add(token);
    const audit = linesOf(h, requestId).filter((line) => line.audit === true);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.accessTokenSha256, sha256(token));
    assert.equal(audit[0]?.subjectTokenSha256, sha256(subject));
    assert.equal(audit[0]?.event, 'token_issued');

    // Every audit record of this harness (earlier tests included) names a token this suite received.
    const returnedDigests = new Set([...seenTokens].map(sha256));
    const audits = auditLines(h);
    for (const line of audits) {
      assert.equal(typeof line.accessTokenSha256, 'string');
      assert.ok(returnedDigests.has(line.accessTokenSha256 as string), 'the audited digest is of a returned token');
    }
    assertNotLogged(h, seenTokens);
  });
});

describe('POST /token: no matching rule', () => {
  const h = useHarness({
    config: () => ({
      rules: [
        { name: 'payments-only', match: { namespaces: ['payments', 'payments-*'] }, policies: ['payments-read'] },
        { name: 'orders-deployers', match: { namespaces: ['orders'], serviceAccounts: ['deployer'] }, policies: ['orders-write'] },
      ],
    }),
  });

  it('-> 400 invalid_request / no_matching_rule; the response names no rule, the log line has the verdicts', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'marketing', serviceAccount: 'argo-runner' });
    const requestId = nextRequestId('no-rule');
    const res = await h.exchange(subject).set('X-Request-Id', requestId);
    assertOAuthError(res, 400, 'invalid_request', 'no_matching_rule');
    for (const internal of ['payments-only', 'orders-deployers', 'payments-*', 'deployer', 'orders-write', 'payments-read']) {
      assert.equal(res.text.includes(internal), false, `the response does not mention ${internal}`);
    }
    const line = exchangeLine(h, requestId);
    assert.equal(line.outcome, 'rejected');
    assert.equal(line.reason, 'no_matching_rule');
    assert.deepEqual(line.verdicts, [
      { rule: 'payments-only', matched: false, reason: 'namespace "marketing" matches none of [payments, payments-*]' },
      { rule: 'orders-deployers', matched: false, reason: 'namespace "marketing" matches none of [orders]' },
    ]);
    assert.equal(auditLines(h).length, 0, 'nothing minted');
    assertNotLogged(h, [subject]);
  });

  it('a workload a rule does match still gets its token', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments-eu' });
    const res = await h.exchange(subject).expect(200);
    assert.equal(res.body.scope, 'payments-read');
  });
});

describe('POST /token: the token cache', () => {
  const h = useHarness();

  it('a second identical exchange returns the same token, logged as cached, with no second audit record', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments-cache' });
    const first = await h.exchange(subject).set('X-Request-Id', 'cache-first').expect(200);
    const second = await h.exchange(subject).set('X-Request-Id', 'cache-second').expect(200);
    assert.equal(second.body.access_token, first.body.access_token);
    assert.equal(second.body.scope, first.body.scope);
    assert.equal(exchangeLine(h, 'cache-first').outcome, 'issued');
    const cachedLine = exchangeLine(h, 'cache-second');
    assert.equal(cachedLine.outcome, 'cached');
    assert.equal(cachedLine.reason, 'ok');
    const { jti } = await verifyMinted(h, first.body.access_token);
    assert.equal(cachedLine.jti, jti);
    const audits = auditLines(h).filter((line) => line.jti === jti);
    assert.equal(audits.length, 1, 'one audit record for one minted token');
    assert.equal(linesOf(h, 'cache-second').some((line) => line.audit === true), false);
    assertNotLogged(h, [subject, first.body.access_token]);
  });

  it('expires with the refresh margin: past exp - refreshBefore a new token with a new jti is minted', async () => {
    // payments-ci grants 300 s; the harness refreshes 60 s before expiry.
    assert.equal(h.config.cache.refreshBeforeSeconds, 60);
    const subject = await h.issuer.projectedToken({ namespace: 'payments-expiry' });
    const first = await h.exchange(subject).expect(200);
    assert.equal(first.body.expires_in, 300);
    const firstJti = (await verifyMinted(h, first.body.access_token)).jti;

    h.clock.advance(230); // 70 s of life left: still served from the cache
    const stillCached = await h.exchange(subject).expect(200);
    assert.equal(stillCached.body.access_token, first.body.access_token);
    assert.equal(stillCached.body.expires_in, 70);

    h.clock.advance(11); // 59 s left: inside the margin
    const renewed = await h.exchange(subject).set('X-Request-Id', 'cache-renewed').expect(200);
    assert.notEqual(renewed.body.access_token, first.body.access_token);
    assert.equal(renewed.body.expires_in, 300);
    const renewedJti = (await verifyMinted(h, renewed.body.access_token)).jti;
    assert.equal(typeof renewedJti, 'string');
    assert.notEqual(renewedJti, firstJti);
    assert.equal(exchangeLine(h, 'cache-renewed').outcome, 'issued');
  });

  it('a different scope is a different grant, never served from another grant\'s cache entry', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments-scope-cache' });
    const full = await h.exchange(subject).expect(200);
    const narrowed = await h.exchange(subject, { scope: 'status-read' }).expect(200);
    assert.notEqual(narrowed.body.access_token, full.body.access_token);
    assert.equal((await verifyMinted(h, narrowed.body.access_token)).scope, 'status-read');
  });
});

describe('HTTP surface', () => {
  const h = useHarness({ warmUp: true });

  it('an unknown route -> 404 JSON', async () => {
    const res = await h.http.get('/nope');
    assertOAuthError(res, 404, 'invalid_request', 'not_found');
  });

  it('GET /token -> 404 or 405 JSON, not HTML', async () => {
    const res = await h.http.get('/token');
    assert.ok(res.status === 404 || res.status === 405, `status ${res.status}`);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(/<html|<!doctype|<pre>/i.test(res.text), false);
    assert.equal(typeof res.body.error, 'string');
    assert.equal(typeof res.body.reason, 'string');
  });

  it('X-Request-Id is honoured and echoed', async () => {
    const res = await h.http.get('/healthz').set('X-Request-Id', 'wf-orders-7:step.3_a').expect(200);
    assert.equal(res.headers['x-request-id'], 'wf-orders-7:step.3_a');
  });

  it('X-Request-Id is used in the exchange log line', async () => {
    const subject = await h.issuer.projectedToken();
    await h.exchange(subject).set('X-Request-Id', 'trace-me-123').expect(200);
    assert.equal(exchangeLine(h, 'trace-me-123').outcome, 'issued');
  });

  const invalidIds: readonly string[] = ['has spaces', '<script>', 'x'.repeat(129), 'semi;colon', 'quote"'];
  for (const invalid of invalidIds) {
    it(`an invalid X-Request-Id ${JSON.stringify(invalid.slice(0, 20))} is replaced`, async () => {
      const res = await h.http.get('/healthz').set('X-Request-Id', invalid).expect(200);
      const echoed = String(res.headers['x-request-id']);
      assert.notEqual(echoed, invalid);
      assert.match(echoed, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    });
  }

  it('a missing X-Request-Id gets a fresh one per request', async () => {
    const a = await h.http.get('/healthz').expect(200);
    const b = await h.http.get('/healthz').expect(200);
    assert.equal(typeof a.headers['x-request-id'], 'string');
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  const paths: readonly (readonly ['get' | 'post', string])[] = [
    ['post', '/token'],
    ['get', '/token'],
    ['get', '/healthz'],
    ['get', '/readyz'],
    ['get', '/.well-known/jwks.json'],
    ['get', '/.well-known/openid-configuration'],
    ['get', '/metrics'],
    ['get', '/nope'],
  ];
  for (const [method, path] of paths) {
    it(`${method.toUpperCase()} ${path}: no x-powered-by, X-Content-Type-Options: nosniff`, async () => {
      const res = await h.http[method](path);
      assert.equal(res.headers['x-powered-by'], undefined);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    });
  }

  it('/.well-known/jwks.json: Cache-Control with max-age, public keys only', async () => {
    const res = await h.http.get('/.well-known/jwks.json').expect(200);
    assert.match(String(res.headers['cache-control']), /max-age=\d+/);
    const keys = (res.body as JSONWebKeySet).keys;
    assert.equal(keys.length, h.signingKeys.published().length);
    assert.ok(keys.length >= 1);
    for (const key of keys) {
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) assert.equal(secret in key, false, `no "${secret}"`);
      assert.equal(typeof key.kid, 'string');
      assert.equal(key.alg, 'ES256');
      assert.equal(key.use, 'sig');
    }
    assert.equal(keys[0]?.kid, h.signingKeys.active()?.kid);
  });

  it('/.well-known/openid-configuration names issuer, jwks_uri, token_endpoint and the token-exchange grant', async () => {
    const res = await h.http.get('/.well-known/openid-configuration').expect(200);
    assert.equal(res.body.issuer, PUBLIC_URL);
    assert.equal(res.body.jwks_uri, `${PUBLIC_URL}/.well-known/jwks.json`);
    assert.equal(res.body.token_endpoint, `${PUBLIC_URL}/token`);
    assert.ok(Array.isArray(res.body.grant_types_supported));
    assert.ok(res.body.grant_types_supported.includes(GRANT_TYPE_TOKEN_EXCHANGE));
  });

  it('/healthz -> 200', async () => {
    const res = await h.http.get('/healthz').expect(200);
    assert.equal(res.body.status, 'ok');
  });
});

describe('/readyz', () => {
  const h = useHarness();

  it('503 with the failing check before the issuer keys are loaded, 200 after warmUp', async () => {
    h.issuer.setAvailable(false);
    const before = await h.http.get('/readyz');
    assert.equal(before.status, 503);
    assert.equal(before.body.status, 'not_ready');
    assert.equal(before.body.checks['issuer:test-cluster'].ok, false);
    assert.equal(typeof before.body.checks['issuer:test-cluster'].detail, 'string');
    assert.equal(before.body.checks.signingKey.ok, true);

    // A warm-up against an unavailable issuer leaves the broker not ready.
    await h.broker.warmUp();
    assert.equal((await h.http.get('/readyz')).status, 503);

    h.issuer.setAvailable(true);
    await h.broker.warmUp();
    const after = await h.http.get('/readyz').expect(200);
    assert.equal(after.body.status, 'ready');
    assert.equal(after.body.checks['issuer:test-cluster'].ok, true);
  });
});

describe('/metrics', () => {
  const h = useHarness();

  /** The value of one sample line, or undefined when the series is absent. */
  function sample(text: string, series: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  it('counts issued, cached and rejected exchanges by outcome and reason, and observes an expired token', async () => {
    const subject = await h.issuer.projectedToken();
    await h.exchange(subject).expect(200);
    await h.exchange(subject).expect(200);
    assertOAuthError(await h.exchange(subject, { scope: 'admin' }), 400, 'invalid_target', 'scope_not_granted');
    const expired = await h.issuer.projectedToken({ offsetSeconds: -(3600 + 600), lifetimeSeconds: 3600 });
    assertOAuthError(await h.exchange(expired), 400, 'invalid_request', 'expired');

    const res = await h.http.get('/metrics').expect(200);
    const text = res.text;
    assert.equal(sample(text, 'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster"}'), 1);
    assert.equal(sample(text, 'token_broker_exchanges_total{outcome="cached",reason="ok",issuer="test-cluster"}'), 1);
    assert.equal(sample(text, 'token_broker_exchanges_total{outcome="rejected",reason="scope_not_granted",issuer="test-cluster"}'), 1);
    assert.equal(sample(text, 'token_broker_exchanges_total{outcome="rejected",reason="expired",issuer="test-cluster"}'), 1);
    assert.equal(sample(text, 'token_broker_subject_token_expired_for_seconds_count'), 1);
    assert.equal(sample(text, 'token_broker_subject_token_expired_for_seconds_sum'), 600);
    assert.equal(sample(text, 'token_broker_subject_token_expired_for_seconds_bucket{le="300"}'), 0);
    assert.equal(sample(text, 'token_broker_subject_token_expired_for_seconds_bucket{le="900"}'), 1);
    // Labels come from fixed sets: no subject, namespace or token in any series.
    for (const identifying of ['payments', 'argo-runner', subject, expired]) assert.equal(text.includes(identifying), false);
  });
});
