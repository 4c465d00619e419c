import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, type KeyObject } from 'jose';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node';
import type { Redis } from 'ioredis';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { startClusterHarness, type ClusterHarness } from '../support/cluster-harness.js';
import { captureSpans, spanTexts, type SpanCapture } from '../support/span-capture.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { eventually, rawRedis } from '../support/multi-broker.js';
import { EXCHANGE_SPAN } from '../../src/server/observability/tracing.js';

/*
 * The spans of real exchanges, through the real SDK (NodeTracerProvider, AsyncLocalStorage context) with the
 * in-memory exporter: one SERVER span per POST /token, parented by the caller's traceparent, each step a child,
 * and nothing secret in any span. The trace id is also in the exchange log line and the audit record.
 */

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function traceparent(flags = '01'): { header: string; traceId: string; parentId: string } {
  const traceId = hex(16);
  const parentId = hex(8);
  return { header: `00-${traceId}-${parentId}-${flags}`, traceId, parentId };
}

function linesOf(h: Harness, requestId: string): Record<string, unknown>[] {
  return h.logs.lines.filter((line) => line.requestId === requestId);
}

function exchangeLine(h: Harness, requestId: string): Record<string, unknown> {
  const lines = linesOf(h, requestId).filter((line) => line.audit !== true);
  assert.equal(lines.length, 1, 'one exchange line');
  return lines[0] as Record<string, unknown>;
}

function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const named = spans.filter((span) => span.name === name);
  assert.equal(named.length, 1, `exactly one "${name}" span among ${spans.map((s) => s.name).join(', ')}`);
  return named[0] as ReadableSpan;
}

function childrenOf(spans: readonly ReadableSpan[], parent: ReadableSpan): string[] {
  return spans
    .filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId)
    .map((span) => span.name)
    .sort();
}

/** Every secret of an exchange, none of which may be in any span. */
async function secretsOf(h: Harness, ...tokens: string[]): Promise<string[]> {
  const active = h.signingKeys.active();
  assert.ok(active !== undefined);
  const privateJwk = await exportJWK(active.privateKey as KeyObject);
  assert.equal(typeof privateJwk.d, 'string');
  return [...tokens, ...tokens.map(sha256), privateJwk.d as string, ...tokens.map((t) => t.split('.')[2] ?? t)];
}

function assertNoSecretIn(spans: readonly ReadableSpan[], secrets: readonly string[]): void {
  const texts = spanTexts(spans);
  assert.ok(texts.length > spans.length, 'the spans have attributes to check');
  for (const secret of secrets) {
    assert.ok(secret.length >= 16, 'a secret long enough to find');
    for (const text of texts) assert.equal(text.includes(secret), false, `no secret in span text "${text.slice(0, 60)}"`);
  }
}

describe('exchange tracing with the OpenTelemetry SDK', () => {
  let capture: SpanCapture;
  let h: Harness;
  before(async () => {
    capture = captureSpans();
    // Not warmed up: the first exchange fetches the issuer's discovery document and keys inside its trace.
    h = await startHarness({ tracing: capture.tracing });
  });
  after(async () => {
    await h.close();
    await capture.close();
  });

  it('a traced exchange is one SERVER span, child of the caller\'s traceparent, with verification, JWKS fetch and signing as children', async () => {
    const parent = traceparent();
    const subject = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner' });
    const requestId = `trace-${randomUUID()}`;
    const response = await h.exchange(subject).set('traceparent', parent.header).set('X-Request-Id', requestId).expect(200);
    const accessToken = (response.body as { access_token: string }).access_token;

    const spans = capture.spansOf(parent.traceId);
    const root = only(spans, EXCHANGE_SPAN);
    assert.equal(root.kind, SpanKind.SERVER);
    assert.equal(root.parentSpanContext?.spanId, parent.parentId, 'the caller\'s span is the parent');
    assert.equal(root.parentSpanContext?.isRemote, true);
    assert.equal(root.status.code, SpanStatusCode.UNSET);
    assert.equal(root.attributes['token_broker.outcome'], 'issued');
    assert.equal(root.attributes['token_broker.reason'], 'ok');
    assert.equal(root.attributes['token_broker.issuer'], 'test-cluster');
    assert.equal(root.attributes['token_broker.namespace'], 'payments');
    assert.equal(root.attributes['token_broker.request_id'], requestId);
    assert.deepEqual(childrenOf(spans, root), ['sign access token', 'verify subject token']);
    const verify = only(spans, 'verify subject token');
    assert.deepEqual(childrenOf(spans, verify), ['issuer discovery', 'jwks fetch']);
    assert.equal(only(spans, 'jwks fetch').attributes['http.response.status_code'], 200);
    assert.equal(spans.length, 5, 'nothing else in the trace');

    assert.equal(exchangeLine(h, requestId).traceId, parent.traceId, 'the exchange log line names the trace');
    const audit = linesOf(h, requestId).filter((line) => line.audit === true);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.traceId, parent.traceId, 'the audit record names the trace');

    assertNoSecretIn(spans, await secretsOf(h, subject, accessToken));
  });

  it('a cached answer is an exchange span with verification only, marked as a cache hit', async () => {
    const subject = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner', podName: 'cached-step' });
    await h.exchange(subject).expect(200);
    const parent = traceparent();
    const response = await h.exchange(subject).set('traceparent', parent.header).expect(200);
    const spans = capture.spansOf(parent.traceId);
    const root = only(spans, EXCHANGE_SPAN);
    assert.equal(root.attributes['token_broker.outcome'], 'cached');
    assert.equal(root.attributes['token_broker.cache'], 'hit');
    assert.deepEqual(childrenOf(spans, root), ['verify subject token'], 'nothing signed');
    assertNoSecretIn(spans, await secretsOf(h, subject, (response.body as { access_token: string }).access_token));
  });

  it('a refusal sets the exchange span\'s status to ERROR with the reason code the log line has', async () => {
    const parent = traceparent();
    const requestId = `trace-refused-${randomUUID()}`;
    const subject = await h.issuer.projectedToken({ namespace: 'payments', audience: 'someone-else' });
    const response = await h.exchange(subject).set('traceparent', parent.header).set('X-Request-Id', requestId).expect(400);
    assert.equal((response.body as { error: string }).error, 'invalid_request');
    const line = exchangeLine(h, requestId);
    assert.equal(line.traceId, parent.traceId);
    const spans = capture.spansOf(parent.traceId);
    const root = only(spans, EXCHANGE_SPAN);
    assert.equal(root.status.code, SpanStatusCode.ERROR);
    assert.equal(root.status.message, line.reason);
    assert.equal(root.attributes['token_broker.outcome'], 'rejected');
    const verify = only(spans, 'verify subject token');
    assert.equal(verify.status.code, SpanStatusCode.ERROR);
    assert.equal(verify.status.message, line.reason, 'the step\'s status carries the code, not the description');
    assertNoSecretIn(spans, await secretsOf(h, subject));
  });

  it('without a traceparent the exchange starts a trace of its own, and the log line names it', async () => {
    const requestId = `trace-root-${randomUUID()}`;
    await h.exchange(await h.issuer.projectedToken({ namespace: 'payments' })).set('X-Request-Id', requestId).expect(200);
    const root = capture.spans().find((span) => span.name === EXCHANGE_SPAN && span.attributes['token_broker.request_id'] === requestId);
    assert.ok(root !== undefined);
    assert.equal(root.parentSpanContext, undefined, 'a root span');
    assert.equal(exchangeLine(h, requestId).traceId, root.spanContext().traceId);
  });

  it('a caller that does not sample is not exported, yet its trace id is logged; tracestate is kept on the span context', async () => {
    const unsampled = traceparent('00');
    const requestId = `trace-unsampled-${randomUUID()}`;
    await h.exchange(await h.issuer.projectedToken({ namespace: 'payments' })).set('traceparent', unsampled.header).set('X-Request-Id', requestId).expect(200);
    assert.deepEqual(capture.spansOf(unsampled.traceId), []);
    assert.equal(exchangeLine(h, requestId).traceId, unsampled.traceId);

    const sampled = traceparent();
    await h.exchange(await h.issuer.projectedToken({ namespace: 'payments' })).set('traceparent', sampled.header).set('tracestate', 'vendor=opaque-value,other@tenant=1').expect(200);
    const root = only(capture.spansOf(sampled.traceId), EXCHANGE_SPAN);
    assert.equal(root.spanContext().traceState?.get('vendor'), 'opaque-value');
    assert.equal(root.spanContext().traceState?.get('other@tenant'), '1');
  });
});

describe('exchange tracing with Redis and Kubernetes', () => {
  let capture: SpanCapture;
  let server: RedisServer;
  let raw: Redis;
  let h: ClusterHarness;
  const prefix = `trace-${randomUUID()}:`;
  before(async () => {
    capture = captureSpans();
    server = await startRedisServer();
    raw = rawRedis(server.url);
    h = await startClusterHarness({
      tracing: capture.tracing,
      kubernetes: { podBinding: 'enforce' },
      config: () => ({
        cache: { redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 2000 } },
        audit: { redisStream: { key: `${prefix}audit`, maxLen: 1000 } },
      }),
    });
  });
  after(async () => {
    await h.close();
    raw.disconnect();
    await server.stop();
    await capture.close();
  });

  it('each Redis operation and Kubernetes lookup is a child span; the streamed audit record names the trace', async () => {
    h.kube.putNamespace('payments');
    h.kube.putServiceAccount('payments', 'argo-runner');
    const pod = h.kube.putPod('payments', 'step-traced', { serviceAccountName: 'argo-runner' });
    const subject = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner', podName: 'step-traced', podUid: pod.metadata.uid });
    const parent = traceparent();
    const response = await h.exchange(subject).set('traceparent', parent.header).expect(200);
    const accessToken = (response.body as { access_token: string }).access_token;

    // The XADD is written after the answer: wait for its span, bounded.
    assert.ok(await eventually(() => capture.spansOf(parent.traceId).some((span) => span.name === 'redis audit append'), 5000), 'the audit append span ended');

    const spans = capture.spansOf(parent.traceId);
    const root = only(spans, EXCHANGE_SPAN);
    assert.deepEqual(childrenOf(spans, root), ['kubernetes get pod', 'kubernetes get serviceaccount', 'redis audit append', 'redis mint lock', 'redis token cache get', 'verify subject token']);
    const lock = only(spans, 'redis mint lock');
    assert.deepEqual(childrenOf(spans, lock), ['redis mint rate limit', 'redis token cache set', 'sign access token']);
    assert.equal(only(spans, 'redis token cache get').attributes['token_broker.cache'], 'miss');
    assert.equal(only(spans, 'redis token cache get').attributes['db.system.name'], 'redis');
    assert.equal(only(spans, 'redis audit append').attributes['token_broker.streamed'], true);
    assert.equal(only(spans, 'kubernetes get pod').attributes['k8s.namespace.name'], 'payments');

    const entries = (await raw.xrange(`${prefix}audit`, '-', '+')) as [string, string[]][];
    const records = entries.map(([, fields]) => JSON.parse(fields[1] ?? '{}') as Record<string, unknown>);
    assert.deepEqual(records.map((record) => record.traceId), [parent.traceId]);

    assertNoSecretIn(spans, await secretsOf(h, subject, accessToken));
  });
});
