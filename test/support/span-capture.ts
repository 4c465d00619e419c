import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { createTracing, type Tracing } from '../../src/server/observability/tracing.js';

/** A real OpenTelemetry SDK whose finished spans are kept in memory, for the span tree an exchange produces. */
export interface SpanCapture {
  readonly tracing: Tracing;
  /** Every span finished so far. */
  spans(): ReadableSpan[];
  /** The spans of one trace. */
  spansOf(traceId: string): ReadableSpan[];
  close(): Promise<void>;
}

/**
 * The SDK's NodeTracerProvider with the in-memory exporter, registered the way serve registers its own
 * (AsyncLocalStorage context manager, W3C propagator): spans export synchronously when they end.
 */
export function captureSpans(): SpanCapture {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  const tracing = createTracing(provider.getTracer('token-broker-test'));
  return {
    tracing,
    spans: () => exporter.getFinishedSpans(),
    spansOf: (traceId) => exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId),
    async close() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Every attribute value of every span, as text, for leak checks (plus names, status messages and trace state). */
export function spanTexts(spans: readonly ReadableSpan[]): string[] {
  return spans.flatMap((span) => [
    span.name,
    span.status.message ?? '',
    span.spanContext().traceState?.serialize() ?? '',
    ...Object.entries(span.attributes).map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : String(value)}`),
    ...span.events.map((event) => `${event.name} ${JSON.stringify(event.attributes ?? {})}`),
  ]);
}
