import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { captureSpans, spanTexts, type SpanCapture } from '../support/span-capture.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { EXCHANGE_SPAN } from '../../src/server/observability/tracing.js';

/*
 * The trace context headers are the one input of POST /token that reaches the log line and the audit record
 * without being a credential the broker verifies. A header that is not exactly W3C Trace Context is ignored as a
 * whole: the exchange is answered as if it were absent, the value is never logged or put in a span, and it cannot
 * make the broker join (or name) a trace of the attacker's choosing in any other shape. Invariant T1 of
 * docs/threat-model.md.
 */

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Hostile traceparent values: none is valid W3C Trace Context. Each carries a marker to look for in the logs. */
function hostileTraceparents(): { name: string; value: string; marker: string }[] {
  // Lowercase hex, so an id built from it fails only by the rule the case names.
  const marker = () => hex(8);
  const cases: { name: string; build: (m: string) => string }[] = [
    { name: 'log-line smuggling (JSON fragment)', build: (m) => `00-${hex(16)}-${hex(8)}-01","level":60,"msg":"${m}` },
    { name: 'all-zero trace id', build: (m) => `00-${'0'.repeat(32)}-${hex(8)}-01-${m}` },
    { name: 'all-zero parent id', build: (m) => `00-${m.padEnd(32, 'a').slice(0, 32)}-${'0'.repeat(16)}-01` },
    { name: 'uppercase ids', build: (m) => `00-${m.padEnd(32, 'A').slice(0, 32).toUpperCase()}-${hex(8)}-01` },
    { name: 'version ff', build: (m) => `ff-${m.padEnd(32, 'b').slice(0, 32)}-${hex(8)}-01` },
    { name: 'version 00 with a trailing field', build: (m) => `00-${hex(16)}-${hex(8)}-01-${m}` },
    { name: 'oversized (8 KiB)', build: (m) => `01-${hex(16)}-${hex(8)}-01-${m}${'a'.repeat(8192)}` },
    { name: 'script in the value', build: (m) => `<script>${m}</script>` },
    { name: 'percent-encoded newline', build: (m) => `00-${hex(16)}-${hex(8)}-01%0a${m}` },
  ];
  return cases.map(({ name, build }) => {
    const m = marker();
    return { name, value: build(m), marker: m };
  });
}

function form(subject: string): string {
  return `grant_type=${encodeURIComponent(GRANT_TYPE_TOKEN_EXCHANGE)}&subject_token_type=${encodeURIComponent(TOKEN_TYPE_JWT)}&subject_token=${subject}`;
}

function exchangeLineOf(h: Harness, requestId: string): Record<string, unknown> {
  const lines = h.logs.lines.filter((line) => line.requestId === requestId && line.audit !== true);
  assert.equal(lines.length, 1);
  return lines[0] as Record<string, unknown>;
}

describe('security: hostile trace context on POST /token (tracing off)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.broker.warmUp();
  });
  after(() => h.close());

  for (const attack of hostileTraceparents()) {
    it(`ignores a traceparent with ${attack.name}: the token is issued, no trace id is logged, the value is nowhere in the logs`, async () => {
      const requestId = `tp-${randomUUID()}`;
      const subject = await h.issuer.projectedToken({ podName: `tp-${hex(4)}` });
      const response = await h.exchange(subject).set('traceparent', attack.value).set('X-Request-Id', requestId);
      assert.equal(response.status, 200, response.text);
      assert.equal(exchangeLineOf(h, requestId).traceId, undefined);
      const audit = h.logs.lines.filter((line) => line.requestId === requestId && line.audit === true);
      assert.equal(audit.length, 1, 'minted: one audit record');
      assert.equal(audit[0]?.traceId, undefined);
      assert.equal(h.logs.raw.some((text) => text.toLowerCase().includes(attack.marker)), false, 'the value is never logged');
      assert.equal(response.text.includes(attack.marker), false, 'never echoed');
      assert.equal(JSON.stringify(response.headers).includes(attack.marker), false, 'not in a response header');
    });
  }

  // Node hands a route two headers of the same unknown name joined by ", ", which is how they arrive here.
  it('two traceparent headers are ignored (W3C: invalid), as is a tracestate without a valid traceparent', async () => {
    const requestId = `tp-dup-${randomUUID()}`;
    const first = `00-${hex(16)}-${hex(8)}-01`;
    const second = `00-${hex(16)}-${hex(8)}-01`;
    const response = await h.exchange(await h.issuer.projectedToken()).set('traceparent', `${first}, ${second}`).set('tracestate', 'evil=1').set('X-Request-Id', requestId);
    assert.equal(response.status, 200);
    assert.equal(exchangeLineOf(h, requestId).traceId, undefined);
    assert.equal(h.logs.raw.some((text) => text.includes(first.slice(3, 35)) || text.includes(second.slice(3, 35))), false);
  });

  it('a valid traceparent is honoured and its trace id is the only part logged; tracestate never is', async () => {
    const requestId = `tp-ok-${randomUUID()}`;
    const traceId = hex(16);
    const parentId = hex(8);
    const state = `vendor=${hex(12)}`;
    const response = await h.exchange(await h.issuer.projectedToken({ podName: `ok-${hex(4)}` })).set('traceparent', `00-${traceId}-${parentId}-01`).set('tracestate', state).set('X-Request-Id', requestId);
    assert.equal(response.status, 200);
    assert.equal(exchangeLineOf(h, requestId).traceId, traceId);
    assert.equal(h.logs.raw.some((text) => text.includes(parentId)), false, 'the caller\'s span id is not logged');
    assert.equal(h.logs.raw.some((text) => text.includes(state)), false, 'tracestate is not logged');
  });

  it('a control character in the header is refused by the HTTP parser before any exchange is recorded', async () => {
    const server: Server = createServer(h.broker.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const linesBefore = h.logs.lines.length;
      const body = form(await h.issuer.projectedToken());
      const status = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let answer = '';
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
        socket.on('data', (chunk) => {
          answer += chunk.toString('latin1');
        });
        socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
        socket.on('error', reject);
        socket.end(
          `POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\ntraceparent: 00-${hex(16)}-${hex(8)}-01\u0000{"level":60}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      });
      assert.match(status, /^HTTP\/1\.1 400 /);
      assert.equal(h.logs.lines.slice(linesBefore).some((line) => line.msg === 'exchange succeeded' || line.audit === true), false, 'no exchange happened');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('security: hostile trace context on POST /token (tracing on)', () => {
  let capture: SpanCapture;
  let h: Harness;
  before(async () => {
    capture = captureSpans();
    h = await startHarness({ tracing: capture.tracing });
    await h.broker.warmUp();
  });
  after(async () => {
    await h.close();
    await capture.close();
  });

  for (const attack of hostileTraceparents()) {
    it(`a traceparent with ${attack.name} starts a new root trace; the value is in no span and no log line`, async () => {
      const requestId = `tp-traced-${randomUUID()}`;
      const response = await h.exchange(await h.issuer.projectedToken({ podName: `tt-${hex(4)}` })).set('traceparent', attack.value).set('tracestate', `k=${attack.marker}`).set('X-Request-Id', requestId);
      assert.equal(response.status, 200);
      const root = capture.spans().find((span) => span.name === EXCHANGE_SPAN && span.attributes['token_broker.request_id'] === requestId);
      assert.ok(root !== undefined, 'the exchange is traced');
      assert.equal(root.parentSpanContext, undefined, 'a root span: the hostile parent is not joined');
      assert.equal(root.spanContext().traceState, undefined, 'no tracestate without a valid traceparent');
      assert.equal(exchangeLineOf(h, requestId).traceId, root.spanContext().traceId, 'the log names the broker\'s own trace');
      const spans = capture.spansOf(root.spanContext().traceId);
      assert.equal(spanTexts(spans).some((text) => text.toLowerCase().includes(attack.marker)), false);
      assert.equal(h.logs.raw.some((text) => text.toLowerCase().includes(attack.marker)), false);
    });
  }

  it('an oversized or malformed tracestate is dropped while the valid traceparent is honoured', async () => {
    for (const state of [`a=${'x'.repeat(600)}`, 'a=1,a=2', 'UPPER=1', 'a=b=c']) {
      const traceId = hex(16);
      const response = await h.exchange(await h.issuer.projectedToken()).set('traceparent', `00-${traceId}-${hex(8)}-01`).set('tracestate', state);
      assert.equal(response.status, 200);
      const spans = capture.spansOf(traceId);
      const root = spans.find((span) => span.name === EXCHANGE_SPAN);
      assert.ok(root !== undefined, 'the exchange joined the caller\'s trace');
      assert.equal(root.spanContext().traceState, undefined, `tracestate ${state.slice(0, 20)} dropped`);
    }
  });
});
