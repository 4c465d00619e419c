import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { metricValue } from '../support/multi-broker.js';

/*
 * POST /token skips work for what nearly every client sends: the exact form Content-Type needs no media-type
 * parsing, and no Accept, * / * or application/json needs no negotiation. The shortcuts must answer exactly as
 * the full checks do, for those values and for every other.
 */

const FORM = (subject: string) =>
  `grant_type=${encodeURIComponent(GRANT_TYPE_TOKEN_EXCHANGE)}&subject_token_type=${encodeURIComponent(TOKEN_TYPE_JWT)}&subject_token=${subject}`;

describe('POST /token fast paths answer as the full checks do', () => {
  let h: Harness;
  let subject: string;
  before(async () => {
    h = await startHarness();
    subject = await h.issuer.projectedToken();
  });
  after(() => h.close());

  const accepts: readonly [string | undefined, 'json' | 'text'][] = [
    [undefined, 'json'],
    ['*/*', 'json'],
    ['application/json', 'json'],
    ['text/plain', 'text'],
    ['text/*', 'text'],
    ['application/json, text/plain', 'json'],
    ['text/plain, application/json', 'text'],
    ['application/json;q=0.5, text/plain', 'text'],
    ['*/*;q=0.1, text/plain', 'text'],
    ['Application/JSON', 'json'],
    ['image/png', 'json'],
  ];
  for (const [accept, expected] of accepts) {
    it(`Accept: ${accept ?? '(none)'} -> ${expected}`, async () => {
      const request = h.http.post('/token').set('Content-Type', 'application/x-www-form-urlencoded');
      if (accept !== undefined) request.set('Accept', accept);
      const res = await request.send(FORM(subject));
      assert.equal(res.status, 200, res.text);
      if (expected === 'json') {
        assert.match(String(res.headers['content-type']), /^application\/json; charset=utf-8$/);
        assert.equal(typeof res.body.access_token, 'string');
      } else {
        assert.match(String(res.headers['content-type']), /^text\/plain; charset=utf-8$/);
        assert.match(res.text, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      }
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers.pragma, 'no-cache');
    });
  }

  const contentTypes: readonly [string, number][] = [
    ['application/x-www-form-urlencoded', 200],
    ['application/x-www-form-urlencoded; charset=utf-8', 200],
    ['Application/X-WWW-Form-Urlencoded', 200],
    ['application/json', 400],
    ['text/plain', 400],
    ['application/x-www-form-urlencoded-not', 400],
  ];
  for (const [contentType, status] of contentTypes) {
    it(`Content-Type: ${contentType} -> ${status}`, async () => {
      const res = await h.http.post('/token').set('Content-Type', contentType).send(FORM(subject));
      assert.equal(res.status, status, res.text);
      if (status === 400) {
        assert.deepEqual(res.body, {
          error: 'invalid_request',
          error_description: 'The request body must be application/x-www-form-urlencoded (RFC 8693).',
          reason: 'unsupported_media_type',
        });
      }
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers.pragma, 'no-cache');
    });
  }

  it('the audit record of an issued token still carries the SHA-256 of the token returned', async () => {
    const fresh = await h.issuer.projectedToken({ podName: 'fast-path-audit' });
    const res = await h.exchange(fresh).expect(200);
    const requestId = String(res.headers['x-request-id']);
    const audit = h.logs.lines.filter((line) => line.audit === true && line.requestId === requestId);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.accessTokenSha256, createHash('sha256').update(String(res.body.access_token)).digest('base64url'));
  });

  // The server hands exactly `POST /token` to the handler itself; Express routes the other spellings of the path
  // to the same handler. Both must answer alike, and count under the same route in the duration histogram.
  it('POST /token and the spellings Express routes (/token/, /TOKEN, /token?x=1) answer alike', async () => {
    const seen: string[] = [];
    for (const path of ['/token', '/token/', '/TOKEN', '/token?x=1']) {
      const ok = await h.http.post(path).set('Content-Type', 'application/x-www-form-urlencoded').set('X-Request-Id', `spelling-${seen.length}`).send(FORM(subject));
      assert.equal(ok.status, 200, `${path}: ${ok.text}`);
      assert.deepEqual(Object.keys(ok.body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'scope', 'token_type'], path);
      assert.equal(ok.headers['content-type'], 'application/json; charset=utf-8', path);
      assert.equal(ok.headers['content-length'], String(Buffer.byteLength(ok.text)), path);
      assert.equal(ok.headers['x-request-id'], `spelling-${seen.length}`, path);
      assert.equal(ok.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(ok.headers['referrer-policy'], 'no-referrer', path);
      assert.equal(ok.headers['cache-control'], 'no-store', path);
      assert.equal(ok.headers.pragma, 'no-cache', path);
      const refused = await h.http.post(path).set('Content-Type', 'application/x-www-form-urlencoded').send('grant_type=password');
      assert.equal(refused.status, 400, path);
      assert.deepEqual(refused.body, { error: 'unsupported_grant_type', error_description: refused.body.error_description, reason: 'unsupported_grant_type' }, path);
      seen.push(ok.body.access_token as string);
    }
    assert.equal(new Set(seen).size, 1, 'one cached token for all four');
    const metrics = (await h.http.get('/metrics').expect(200)).text;
    const samples = metrics.split('\n').filter((line) => line.startsWith('token_broker_http_request_duration_seconds_count{'));
    assert.ok(samples.some((line) => line.includes('route="/token"') && line.includes('status_class="2xx"')), samples.join('\n'));
    assert.ok(!samples.some((line) => /route="\/(token\/|TOKEN)/.test(line)), 'raw paths never become labels');
    assert.ok((metricValue(metrics, 'token_broker_http_request_duration_seconds_count{route="/token",status_class="4xx"}') ?? 0) >= 4);
  });

  it('GET /token answers 405 with Allow: POST, through Express', async () => {
    const res = await h.http.get('/token').expect(405);
    assert.equal(res.headers.allow, 'POST');
    assert.equal(res.body.reason, 'method_not_allowed');
  });
});
