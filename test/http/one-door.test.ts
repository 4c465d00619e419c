import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import fc from 'fast-check';
import supertest from 'supertest';
import { isTokenPath } from '../../src/server/http/create-app.js';
import { startHarness } from '../support/broker-harness.js';

/*
 * The broker's one door decides, once, whether a request is for the token endpoint. It must decide as Express
 * would have routed `/token` (case-insensitive, one optional trailing slash, any query), or a spelling would
 * reach Express's 404 instead of the token endpoint, or the token endpoint would answer paths it should not.
 */

// No '#': a client never sends a fragment (superagent strips it, so the two sides would see different targets).
const PIECES = ['/token', '/TOKEN', '/Token', '/', '//', 's', '/x', '?', '?a=b', '%74', 'oken', '.', '..', '/tok', 'en'];

describe('isTokenPath', () => {
  it('agrees with Express routing of /token on random request targets', async () => {
    const app = express();
    app.set('query parser', 'simple');
    app.all('/token', (_req, res) => res.send('token'));
    app.use((_req, res) => res.send('other'));
    const http = supertest(app);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 4 }), async (parts) => {
        const target = parts.join('');
        if (!target.startsWith('/')) return;
        const res = await http.get(target);
        assert.equal(isTokenPath(target), res.text === 'token', `${target}: Express says ${res.text}`);
      }),
      { numRuns: 300 },
    );
  });

  it('the exact spelling and its variants', () => {
    for (const target of ['/token', '/TOKEN', '/token/', '/token?x=1', '/Token/?']) assert.equal(isTokenPath(target), true, target);
    for (const target of ['/tokens', '/token//', '/token/x', '/', '/v1/token', undefined]) assert.equal(isTokenPath(target), false, String(target));
  });
});

describe('the token endpoint has one door', () => {
  it('every spelling and method reaches the token handler: POST exchanges, others get 405 with Allow, never Express', async () => {
    const h = await startHarness();
    try {
      const token = await h.issuer.projectedToken();
      for (const path of ['/token', '/TOKEN', '/token/', '/token?trace=1']) {
        const res = await h.http.post(path).set('Authorization', `Bearer ${token}`);
        assert.equal(res.status, 200, `${path}: ${res.text}`);
        assert.equal(res.headers['cache-control'], 'no-store');
        assert.ok(typeof res.headers['x-request-id'] === 'string');
      }
      for (const method of ['get', 'put', 'delete', 'head'] as const) {
        const res = await h.http[method]('/token/');
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.allow, 'POST');
      }
      const metrics = (await h.http.get('/metrics')).text;
      // The histogram names the route template, never a raw spelling.
      assert.match(metrics, /token_broker_http_request_duration_seconds_count\{route="\/token",status_class="2xx"\} 4/);
      assert.match(metrics, /token_broker_http_request_duration_seconds_count\{route="\/token",status_class="4xx"\} 4/);
      assert.doesNotMatch(metrics, /route="\/TOKEN"|route="\/token\/"/);
    } finally {
      await h.close();
    }
  });
});
