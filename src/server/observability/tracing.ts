import type { IncomingHttpHeaders } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ExchangeRecord } from './exchange-record.js';
import { BrokerError } from '../errors.js';
import { incomingTraceContext, type IncomingTraceContext } from './trace-context.js';
import type { ExchangeObserver, ExchangeOutcome } from './exchange-outcome.js';
import type { ExchangeToken } from '../exchange/exchange-token.js';

/** The name of the span of one POST /token request (an HTTP server span: method and route). */
export const EXCHANGE_SPAN = 'POST /token';

/**
 * What the broker needs from OpenTelemetry, built on the API only: a tracer comes from whoever set up an SDK
 * (src/server/observability/tracing-sdk.ts, or a test's in-memory exporter). The broker is handed a Tracing only
 * when tracing is on; when it is off nothing here runs, so an untraced exchange pays for no span, context or closure.
 */
export interface Tracing {
  /**
   * Starts the record of one POST /token request and its SERVER span, the child of the caller's `traceparent` when
   * that is valid. The span ends when the record does, with the outcome's attributes; a refusal sets status ERROR
   * with the reason code.
   */
  startExchangeRecord(requestId: string, headers: IncomingHttpHeaders, observe: ExchangeObserver): ExchangeRecord;
  /** The exchange, run inside its record's span, so every step's span is a child of it. */
  exchangeInSpan(exchange: ExchangeToken): ExchangeToken;
  /** Runs `work` in a child span of the active one; a thrown error sets status ERROR (with a BrokerError's code, never a message). */
  inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T>;
}

/** The attributes of the exchange span: only fields the exchange log line already carries, never a token or its digest. */
function outcomeAttributes(outcome: ExchangeOutcome): Attributes {
  const attributes: Attributes = {
    'token_broker.request_id': outcome.requestId,
    'token_broker.outcome': outcome.outcome,
    'token_broker.reason': outcome.reason,
  };
  if (outcome.issuerName !== undefined) attributes['token_broker.issuer'] = outcome.issuerName;
  if (outcome.namespace !== undefined) attributes['token_broker.namespace'] = outcome.namespace;
  if (outcome.serviceAccount !== undefined) attributes['token_broker.service_account'] = outcome.serviceAccount;
  if (outcome.workflow !== undefined) attributes['token_broker.workflow'] = outcome.workflow;
  if (outcome.cacheResult !== undefined) attributes['token_broker.cache'] = outcome.cacheResult;
  if (outcome.policies !== undefined) attributes['token_broker.policies'] = [...outcome.policies];
  return attributes;
}

/** The caller's span as the parent context of the exchange span. */
function parentContextOf(incoming: IncomingTraceContext): Context {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: incoming.traceId,
    spanId: incoming.parentSpanId,
    // Only the sampled bit is defined; other bits are not ours to forward.
    traceFlags: incoming.traceFlags & TraceFlags.SAMPLED,
    isRemote: true,
    ...(incoming.traceState !== undefined && { traceState: createTraceState(incoming.traceState) }),
  });
}

/** Tracing on top of `tracer`. The context manager (AsyncLocalStorage) carries the active span across awaits. */
export function createTracing(tracer: Tracer): Tracing {
  const spans = new WeakMap<ExchangeRecord, Span>();

  function endSpan(span: Span, outcome: ExchangeOutcome): void {
    span.setAttributes(outcomeAttributes(outcome));
    if (outcome.outcome === 'rejected' || outcome.outcome === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.reason });
    span.end();
  }

  return {
    startExchangeRecord(requestId, headers, observe) {
      const incoming = incomingTraceContext(headers);
      const parent = incoming === undefined ? ROOT_CONTEXT : parentContextOf(incoming);
      const span = tracer.startSpan(EXCHANGE_SPAN, { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'http.route': '/token' } }, parent);
      const spanContext = span.spanContext();
      // The caller's trace id always (it correlates with the caller's logs); a new root's only when it is exported.
      const traceId = incoming?.traceId ?? ((spanContext.traceFlags & TraceFlags.SAMPLED) !== 0 ? spanContext.traceId : undefined);
      const inSpan = trace.setSpan(parent, span);
      const record = new ExchangeRecord(
        requestId,
        (outcome) => {
          // The observer runs in the span's context: the audit stream's append is its child.
          try {
            context.with(inSpan, () => observe(outcome));
          } finally {
            endSpan(span, outcome);
          }
        },
        traceId,
      );
      spans.set(record, span);
      return record;
    },

    exchangeInSpan(exchange) {
      return (request, record) => {
        const span = spans.get(record);
        if (span === undefined) return exchange(request, record);
        return context.with(trace.setSpan(context.active(), span), () => exchange(request, record));
      };
    },

    inSpan(name, attributes, work) {
      return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
        try {
          return await work(span);
        } catch (error) {
          // An error's message may quote input: the status carries only a refusal's stable reason code.
          span.setStatus(error instanceof BrokerError ? { code: SpanStatusCode.ERROR, message: error.code } : { code: SpanStatusCode.ERROR });
          throw error;
        } finally {
          span.end();
        }
      });
    },
  };
}
