import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { captureLogs } from '../support/log-capture.js';
import { startTracing, tracingDecision, type TracingEnvironment } from '../../src/server/observability/tracing-sdk.js';

/*
 * When serve traces, from the standard OTEL_* variables alone; and a broker installed without the optional SDK
 * packages (npm ci --omit=optional) that is asked to trace says so once and runs untraced. The SDK itself, started
 * from the environment and exporting over OTLP/HTTP, is tested end to end in otlp-export.test.ts.
 */

const ENDPOINT = 'http://127.0.0.1:4318';

describe('tracingDecision: the OTEL_* variables that turn tracing on', () => {
  const cases: [string, TracingEnvironment, boolean, RegExp?][] = [
    ['nothing set: off (opt-in)', {}, false],
    ['an OTLP endpoint: on', { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, true],
    ['an OTLP traces endpoint: on', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${ENDPOINT}/v1/traces` }, true],
    ['a blank endpoint: off', { OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false],
    ['OTEL_TRACES_EXPORTER=otlp: on (the SDK\'s default endpoint)', { OTEL_TRACES_EXPORTER: 'otlp' }, true],
    ['OTEL_TRACES_EXPORTER=none wins over an endpoint', { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, false],
    ['OTEL_SDK_DISABLED=true wins over everything', { OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, false],
    ['OTEL_SDK_DISABLED=TRUE (case-insensitive)', { OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, false],
    ['OTEL_SDK_DISABLED=false changes nothing', { OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, true],
    ['an exporter that is not bundled: off, with a warning', { OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, false, /only otlp is supported.*ignoring zipkin/],
    ['otlp among others: on, with a warning for the others', { OTEL_TRACES_EXPORTER: 'console, otlp' }, true, /ignoring console/],
    ['OTEL_EXPORTER_OTLP_PROTOCOL=http/json: on, no warning', { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, true],
    ['OTEL_EXPORTER_OTLP_PROTOCOL=grpc: on, warned that only http/json is exported', { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, true, /OTEL_EXPORTER_OTLP_PROTOCOL="grpc": only http\/json is supported/],
    ['the traces protocol wins over the general one', { OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, true],
    ['a protocol with tracing off: nothing to warn about', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, false],
    ['both warnings together', { OTEL_TRACES_EXPORTER: 'otlp,jaeger', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }, true, /ignoring jaeger; OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http\/protobuf"/],
  ];
  for (const [name, env, on, warning] of cases) {
    it(name, () => {
      const decision = tracingDecision(env);
      assert.equal(decision.on, on);
      if (warning === undefined) assert.equal(decision.warning, undefined);
      else assert.match(decision.warning ?? '', warning);
    });
  }
});

describe('startTracing without the optional SDK packages', () => {
  it('asked to trace, it logs one clear warning and returns no tracing (the broker runs untraced)', async () => {
    const logs = captureLogs();
    // A real failed import, as when optional dependencies were omitted.
    const missing = async () => {
      await import('@opentelemetry/sdk-trace-node-not-installed' as string);
      throw new Error('unreachable');
    };
    const setup = await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }, logs.logger, missing);
    assert.equal(setup, undefined);
    const warnings = logs.lines.filter((line) => line.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]?.msg), /OpenTelemetry SDK is not installed .*running without tracing/);
    assert.match(String(warnings[0]?.error), /Cannot find (package|module)/);
  });

  it('not asked to trace, it never loads the SDK and logs nothing', async () => {
    const logs = captureLogs();
    let loaded = false;
    const setup = await startTracing({}, logs.logger, async () => {
      loaded = true;
      throw new Error('must not load');
    });
    assert.equal(setup, undefined);
    assert.equal(loaded, false);
    assert.deepEqual(logs.lines, []);
  });
});
