import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/protocol.js';
import { startHarness, type Harness } from '../support/broker-harness.js';

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
});
