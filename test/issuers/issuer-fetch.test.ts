import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIssuerFetch } from '../../src/server/issuers/issuer-fetch.js';

/*
 * The one HTTP client for discovery and JWKS: size and time limits, no redirects, and the broker's own bearer token
 * only for the origins the operator configured (docs/security.md, "Discovery and JWKS fetches").
 */
describe('createIssuerFetch', { timeout: 30_000 }, () => {
  let server: Server;
  let url: string;
  const seen: (string | undefined)[] = [];
  let dir: string;
  let tokenFile: string;

  before(async () => {
    server = createServer((request, response) => {
      seen.push(request.headers.authorization);
      if (request.url === '/drip') {
        // One byte every 200 ms: never silent for long, never done.
        response.writeHead(200, { 'content-type': 'application/json' });
        const timer = setInterval(() => response.write(' '), 200);
        response.on('close', () => clearInterval(timer));
        return;
      }
      if (request.url === '/large') {
        response.writeHead(200, { 'content-type': 'application/json' });
        return response.end(' '.repeat(2048));
      }
      if (request.url === '/redirect') {
        response.writeHead(302, { location: '/keys' });
        return response.end();
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"keys":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = await mkdtemp(join(tmpdir(), 'tb-issuer-fetch-'));
    tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'own-token\n');
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('sends the bearer token to a configured origin', async () => {
    seen.length = 0;
    const fetch = createIssuerFetch({ bearerTokenFile: tokenFile, credentialOrigins: new Set([url]) });
    assert.equal((await fetch(`${url}/keys`)).status, 200);
    assert.deepEqual(seen, ['Bearer own-token']);
  });

  it('sends no bearer token to any other origin', async () => {
    seen.length = 0;
    const fetch = createIssuerFetch({ bearerTokenFile: tokenFile, credentialOrigins: new Set(['https://kubernetes.default.svc']) });
    assert.equal((await fetch(`${url}/keys`)).status, 200);
    assert.deepEqual(seen, [undefined]);
  });

  it('answers a redirect with the 3xx itself: it is not followed', async () => {
    seen.length = 0;
    const fetch = createIssuerFetch({ bearerTokenFile: tokenFile, credentialOrigins: new Set([url]) });
    assert.equal((await fetch(`${url}/redirect`)).status, 302);
    assert.equal(seen.length, 1, 'one request: the Location was not fetched');
  });

  it('refuses an answer larger than maxBytes', async () => {
    const fetch = createIssuerFetch({ credentialOrigins: new Set(), maxBytes: 1024 });
    await assert.rejects(fetch(`${url}/large`), /exceeds 1024 bytes/);
  });

  it('gives up on an answer that drips in for longer than the timeout, though never silent that long', async () => {
    const fetch = createIssuerFetch({ credentialOrigins: new Set(), timeoutMs: 1000 });
    const started = Date.now();
    await assert.rejects(fetch(`${url}/drip`), /no complete answer from http:\/\/127\.0\.0\.1:\d+ within 1000 ms/);
    assert.ok(Date.now() - started < 5000, 'bounded by the deadline, not by the drip');
  });
});
