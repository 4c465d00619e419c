import { DiagLogLevel, diag } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { createTracing, type Tracing } from './tracing.js';
import type { ServeEnvironment } from '../config/environment.js';

/**
 * The OpenTelemetry SDK for `serve`, set up from the standard OTEL_* environment variables. The SDK and the OTLP
 * exporter are optional dependencies, imported only when tracing is asked for: a broker installed without them
 * (`npm ci --omit=optional`) says so once and runs untraced.
 */

/** The variables that decide whether serve traces (src/server/config/environment.ts). */
export type TracingEnvironment = Pick<
  ServeEnvironment,
  | 'OTEL_SDK_DISABLED'
  | 'OTEL_TRACES_EXPORTER'
  | 'OTEL_EXPORTER_OTLP_ENDPOINT'
  | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
  | 'OTEL_EXPORTER_OTLP_PROTOCOL'
  | 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
  | 'OTEL_SERVICE_NAME'
>;

/** What the environment asks for: tracing over OTLP, or none (with why, when the reason deserves a warning). */
export type TracingDecision = { readonly on: true; readonly warning?: string } | { readonly on: false; readonly warning?: string };

const DEFAULT_SERVICE_NAME = 'token-broker';

const isSet = (value: string | undefined): value is string => value !== undefined && value.trim() !== '';

/**
 * Tracing is opt-in: on when OTEL_TRACES_EXPORTER names otlp, or (with no exporter named) when an OTLP endpoint is
 * set. OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none win. Exporters other than otlp are not bundled.
 */
export function tracingDecision(env: TracingEnvironment): TracingDecision {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return { on: false };
  if (isSet(env.OTEL_TRACES_EXPORTER)) {
    const exporters = env.OTEL_TRACES_EXPORTER.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '');
    if (exporters.includes('none')) return { on: false };
    const unsupported = exporters.filter((name) => name !== 'otlp');
    const warning = unsupported.length > 0 ? `OTEL_TRACES_EXPORTER: only otlp is supported (OTLP/HTTP); ignoring ${unsupported.join(', ')}` : undefined;
    if (!exporters.includes('otlp')) return { on: false, ...(warning !== undefined && { warning }) };
    return withProtocolWarning(env, { on: true, ...(warning !== undefined && { warning }) });
  }
  return withProtocolWarning(env, { on: isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) });
}

/**
 * The bundled exporter speaks OTLP/HTTP with JSON bodies. A collector set up for grpc (port 4317) or http/protobuf
 * would see requests it cannot read, and the spans would be lost quietly: say so at start-up instead.
 */
function withProtocolWarning(env: TracingEnvironment, decision: TracingDecision): TracingDecision {
  if (!decision.on) return decision;
  const [variable, value] = isSet(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
    ? ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL]
    : ['OTEL_EXPORTER_OTLP_PROTOCOL', env.OTEL_EXPORTER_OTLP_PROTOCOL];
  if (!isSet(value) || value.trim().toLowerCase() === 'http/json') return decision;
  // The value is an operator's setting, not a secret; shortened, as it is echoed.
  const protocol = `${variable}=${JSON.stringify(value.trim().slice(0, 40))}: only http/json is supported; spans are exported as OTLP/HTTP JSON, which the collector must accept on its HTTP port (4318)`;
  return { on: true, warning: decision.warning === undefined ? protocol : `${decision.warning}; ${protocol}` };
}

/** Tracing as serve runs it: the broker's Tracing, and the flush at shutdown. */
export interface TracingSetup {
  readonly tracing: Tracing;
  /** Exports the spans still buffered, then stops the SDK. */
  shutdown(): Promise<void>;
}

/** The optional packages, loaded on demand; tests replace this to see the broker without them. */
export type LoadTracingSdk = () => Promise<{
  readonly node: typeof import('@opentelemetry/sdk-trace-node');
  readonly exporter: typeof import('@opentelemetry/exporter-trace-otlp-http');
  readonly resources: typeof import('@opentelemetry/resources');
}>;

export const loadTracingSdk: LoadTracingSdk = async () => {
  const [node, exporter, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  return { node, exporter, resources };
};

/** The SDK's own complaints (an export that failed) go to the broker's log as warnings: the message only, shortened. */
function forwardDiagnostics(logger: Logger): void {
  const warn = (message: string) => logger.warn({ component: 'tracing', detail: String(message).slice(0, 300) }, 'OpenTelemetry SDK');
  const ignore = () => undefined;
  diag.setLogger({ error: warn, warn, info: ignore, debug: ignore, verbose: ignore }, DiagLogLevel.WARN);
}

/**
 * Starts the SDK when the environment asks for tracing: a NodeTracerProvider (AsyncLocalStorage context, W3C trace
 * context propagator, the sampler of OTEL_TRACES_SAMPLER, parent-based always-on by default) exporting in batches
 * (OTEL_BSP_*) over OTLP/HTTP to OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, with OTEL_EXPORTER_OTLP_[TRACES_]HEADERS.
 * The resource is service.name (OTEL_SERVICE_NAME, else token-broker) and OTEL_RESOURCE_ATTRIBUTES. Undefined when
 * tracing is off or the SDK cannot be loaded (one warning); never throws.
 */
export async function startTracing(env: TracingEnvironment, logger: Logger, load: LoadTracingSdk = loadTracingSdk): Promise<TracingSetup | undefined> {
  const decision = tracingDecision(env);
  if (decision.warning !== undefined) logger.warn({ component: 'tracing' }, decision.warning);
  if (!decision.on) return undefined;
  let sdk: Awaited<ReturnType<LoadTracingSdk>>;
  try {
    sdk = await load();
  } catch (error) {
    logger.warn(
      { component: 'tracing', error: error instanceof Error ? error.message : String(error) },
      'tracing was asked for (OTEL_*), but the OpenTelemetry SDK is not installed (optional dependencies omitted?): running without tracing',
    );
    return undefined;
  }
  try {
    forwardDiagnostics(logger);
    const { node, exporter, resources } = sdk;
    const detected = resources.detectResources({ detectors: [resources.envDetector] });
    const resource = resources
      .defaultResource()
      .merge(resources.resourceFromAttributes({ 'service.name': isSet(env.OTEL_SERVICE_NAME) ? env.OTEL_SERVICE_NAME : DEFAULT_SERVICE_NAME }))
      .merge(detected);
    const provider = new node.NodeTracerProvider({ resource, spanProcessors: [new node.BatchSpanProcessor(new exporter.OTLPTraceExporter())] });
    // Global context manager and propagator: the API's context.with and startActiveSpan need them.
    provider.register();
    logger.info({ component: 'tracing', serviceName: resource.attributes['service.name'] }, 'tracing on: exporting spans over OTLP/HTTP');
    return {
      tracing: createTracing(provider.getTracer('workload-token-broker')),
      shutdown: () => provider.shutdown(),
    };
  } catch (error) {
    logger.warn({ component: 'tracing', error: error instanceof Error ? error.message : String(error) }, 'the OpenTelemetry SDK could not be started: running without tracing');
    return undefined;
  }
}
