import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { listen, type RunningServer } from '../../src/server/http/serve-http.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { MAX_SUBJECT_TOKEN_BYTES } from '../../src/server/issuers/verify-subject-token.js';
import { eventually } from '../support/multi-broker.js';
import { assertErrorShape, auditCount, fromFetch, memoryCache } from './refusal.js';

/*
 * Attacks on the listener itself, on a real loopback server built by `listen` exactly as `serve` builds it
 * (header and request timeouts, maximum header size): oversized headers, slow clients, and many connections
 * from one client. A client that never finishes its headers is also covered against the real CLI process in
 * test/cli/cli.test.ts ("disconnects a client that never finishes its headers").
 */

const HEADERS_TIMEOUT_S = 1;
const REQUEST_TIMEOUT_S = 2;
/** Node checks the timeouts once a second (connectionsCheckingInterval), and this machine is shared. */
const CHECK_SLACK_MS = 1000 + 1500;

interface RawExchange {
  readonly received: string;
  readonly ms: number;
}

/**
 * Opens a raw connection, writes `first`, then each of `trickle` after `everyMs`, stopping when the server closes;
 * resolves with everything received once the connection is closed (or after `maxMs`, destroying it).
 */
function rawClient(port: number, first: string, trickle: readonly string[], everyMs: number, maxMs: number): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => socket.destroy(), maxMs);
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(guard);
      if (timer !== undefined) clearInterval(timer);
      resolve({ received, ms: Date.now() - started });
    });
    socket.once('connect', () => {
      socket.write(first);
      let i = 0;
      timer = setInterval(() => {
        if (i >= trickle.length || socket.destroyed) {
          clearInterval(timer);
          return;
        }
        socket.write(trickle[i++] as string);
      }, everyMs);
    });
  });
}

describe('security: attacks on the listener', { timeout: 120_000 }, () => {
  let h: Harness;
  let server: RunningServer;
  let base: string;

  before(async () => {
    h = await startHarness();
    await h.broker.warmUp();
    server = await listen(h.broker.app, {
      port: 0,
      host: '127.0.0.1',
      headersTimeoutSeconds: HEADERS_TIMEOUT_S,
      requestTimeoutSeconds: REQUEST_TIMEOUT_S,
    });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => {
    await server.shutdown(2);
    await h.close();
  });

  const formOf = (subjectToken: string) =>
    new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken }).toString();

  describe('oversized headers and tokens', () => {
    it('a 32 KiB Authorization header: 431 from the HTTP parser, the app never sees the request', async () => {
      const lines = h.logs.lines.length;
      const { received } = await rawClient(server.port, `POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(32 * 1024)}\r\n\r\n`, [], 100, 5000);
      assert.equal(received, 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');
      assert.equal(h.logs.lines.length, lines, 'nothing was logged: no exchange happened');
    });

    it('a Bearer token just over 16 KiB (the header fits): 400 token_too_large, nothing minted', async () => {
      const token = `${'a'.repeat(MAX_SUBJECT_TOKEN_BYTES)}.b.c`;
      const audits = auditCount(h);
      const res = await fromFetch(await fetch(`${base}/token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }));
      assertErrorShape(res, { status: 400, error: 'invalid_request', reason: 'token_too_large', description: `The subject token is larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes.` });
      assert.equal(auditCount(h), audits);
    });
  });

  describe('slow clients', () => {
    it('headers trickled one line every 200 ms: cut off at headersTimeout, though bytes keep arriving', async () => {
      const trickle = Array.from({ length: 50 }, (_, i) => `X-Slow-${i}: y\r\n`);
      const { received, ms } = await rawClient(server.port, 'POST /token HTTP/1.1\r\nHost: x\r\n', trickle, 200, 15_000);
      assert.equal(received, 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      assert.ok(ms < HEADERS_TIMEOUT_S * 1000 + CHECK_SLACK_MS, `closed after ${ms} ms`);
    });

    it('a body trickled 10 bytes every 200 ms: cut off at requestTimeout, refusal logged, nothing minted', async () => {
      const audits = auditCount(h);
      const lines = h.logs.lines.length;
      const head = `POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n`;
      const { received, ms } = await rawClient(server.port, head, Array.from({ length: 100 }, () => 'a'.repeat(10)), 200, 15_000);
      assert.equal(received, 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      assert.ok(ms >= REQUEST_TIMEOUT_S * 1000 - 100 && ms < REQUEST_TIMEOUT_S * 1000 + CHECK_SLACK_MS, `closed after ${ms} ms`);
      assert.equal(auditCount(h), audits);
      // The app learns of the abort just after the socket closes.
      assert.equal(await eventually(() => h.logs.lines.slice(lines).some((line) => typeof line.outcome === 'string'), 2000), true);
      assert.deepEqual(
        h.logs.lines.slice(lines).filter((line) => typeof line.outcome === 'string').map((line) => [line.outcome, line.reason]),
        [['rejected', 'invalid_request']],
      );
    });
  });

  describe('many connections from one client', () => {
    it('200 sockets at once, each one exchange: every answer exact, one mint per workload, audits = issued', async () => {
      const SOCKETS = 200;
      const WORKLOADS = 20;
      const valid: string[] = [];
      for (let pod = 0; pod < WORKLOADS; pod++) valid.push(await h.issuer.projectedToken({ podUid: `many-${pod}` }));
      const forged = await h.issuer.sign(h.issuer.projectedClaims({ podUid: 'many-forged' }), { key: 'unpublished', header: { kid: h.issuer.kid } });
      // Every tenth request is forged; the others go round the workloads (nine requests each).
      let nextValid = 0;
      const bodies = Array.from({ length: SOCKETS }, (_, i) => formOf(i % 10 === 9 ? forged : (valid[nextValid++ % WORKLOADS] as string)));
      const auditsBefore = auditCount(h);
      const cacheBefore = memoryCache(h).size;
      // One agent without keep-alive and without a socket limit: 200 distinct TCP connections in flight together.
      const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: SOCKETS }, (_, i) => {
          const body = bodies[i] as string;
          return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
            const req = httpRequest(
              `${base}/token`,
              { method: 'POST', agent, timeout: 30_000, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
              (res) => {
                let text = '';
                res.setEncoding('utf8').on('data', (chunk: string) => {
                  text += chunk;
                });
                res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
              },
            );
            req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
            req.on('error', reject);
            req.end(body);
          });
        }),
      );
      agent.destroy();
      const elapsed = Date.now() - started;

      const tally = new Map<string, number>();
      for (const r of results) {
        const key = r.status === 200 ? '200' : `${r.status} ${String(r.body.reason)}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(tally), { '200': 180, '400 bad_signature': 20 });
      assert.ok(elapsed < 30_000, `${elapsed} ms`);
      assert.equal(auditCount(h) - auditsBefore, WORKLOADS, 'one mint per workload; the rest served from the cache');
      assert.equal(memoryCache(h).size - cacheBefore, WORKLOADS);
    });

    it('200 idle connections that never send a byte: all cut off at headersTimeout, and a real client is served meanwhile', async () => {
      const IDLE = 200;
      const closed: Promise<number>[] = [];
      const started = Date.now();
      for (let i = 0; i < IDLE; i++) {
        closed.push(
          new Promise<number>((resolve) => {
            const socket = connect(server.port, '127.0.0.1');
            const guard = setTimeout(() => socket.destroy(), 15_000);
            socket.on('error', () => undefined);
            socket.once('close', () => {
              clearTimeout(guard);
              resolve(Date.now() - started);
            });
          }),
        );
      }
      const audits = auditCount(h);
      const res = await fetch(`${base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: formOf(await h.issuer.projectedToken({ podUid: 'served-among-idle' })),
      });
      assert.equal(res.status, 200);
      assert.equal(auditCount(h), audits + 1);
      const times = await Promise.all(closed);
      const slowest = Math.max(...times);
      // Node's headersTimeout starts with a request's first byte; `listen` bounds a silent connection the same.
      assert.ok(Math.min(...times) >= HEADERS_TIMEOUT_S * 1000 - 100, `the first idle connection was closed after ${Math.min(...times)} ms`);
      assert.ok(slowest < HEADERS_TIMEOUT_S * 1000 + CHECK_SLACK_MS, `the last idle connection was closed after ${slowest} ms`);
    });
  });
});
