import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { postTokenExchange } from '../support/token-exchange-request.js';
import { freePort } from '../support/free-port.js';
import { cliEnv, killAllCli, startCli, within, type CliProcess } from '../support/cli-run.js';

/*
 * The real `token-broker serve` as a child process, configured for tracing by the standard OTEL_* variables only,
 * exporting to an OTLP/HTTP receiver on loopback (POST /v1/traces, the collector's JSON encoding of
 * ExportTraceServiceRequest, decoded here). The spans of an exchange carry the caller's traceparent, and SIGTERM
 * flushes them before the process exits.
 */

const SUBJECT_AUDIENCE = 'tyk-token-broker';

interface OtlpAnyValue {
  readonly stringValue?: string;
  readonly intValue?: string | number;
  readonly boolValue?: boolean;
  readonly arrayValue?: { readonly values?: readonly OtlpAnyValue[] };
}
interface OtlpKeyValue {
  readonly key: string;
  readonly value: OtlpAnyValue;
}
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes?: readonly OtlpKeyValue[];
  readonly status?: { readonly code?: number; readonly message?: string };
}
interface ExportTraceServiceRequest {
  readonly resourceSpans: readonly {
    readonly resource?: { readonly attributes?: readonly OtlpKeyValue[] };
    readonly scopeSpans: readonly { readonly spans?: readonly OtlpSpan[] }[];
  }[];
}

interface Received {
  readonly method: string;
  readonly path: string;
  readonly contentType: string;
  readonly raw: string;
  readonly request: ExportTraceServiceRequest;
}

/** A minimal OTLP/HTTP traces receiver: accepts JSON exports on /v1/traces, answers as a collector does. */
async function startOtlpReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const read = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  const server: Server = createServer((req, res) => {
    void read(req).then((body) => {
      const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8');
      const contentType = String(req.headers['content-type']);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !contentType.startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      received.push({ method: req.method, path: req.url, contentType, raw: text, request: JSON.parse(text) as ExportTraceServiceRequest });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const spansOf = (received: readonly Received[]): OtlpSpan[] =>
  received.flatMap((r) => r.request.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans ?? [])));

const attribute = (attributes: readonly OtlpKeyValue[] | undefined, key: string): OtlpAnyValue | undefined => attributes?.find((a) => a.key === key)?.value;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

describe('OTLP/HTTP export from a real serve process', { timeout: 120_000 }, () => {
  let dir: string;
  let issuer: StandInIssuer;
  let configPath: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tb-otlp-'));
    const keysDir = join(dir, 'keys');
    await mkdir(keysDir);
    await writeFile(join(keysDir, 'key-1.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE });
    const config = {
      server: { host: '127.0.0.1', publicUrl: 'http://127.0.0.1:8080' },
      issuers: [{ name: 'test-cluster', issuer: issuer.issuer, audiences: [SUBJECT_AUDIENCE] }],
      signing: { algorithm: 'ES256', keysDir },
      tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
      rules: [{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'], ttlSeconds: 300 }],
      logging: { level: 'info' },
    };
    configPath = join(dir, 'broker.yaml');
    await writeFile(configPath, JSON.stringify(config));
  });

  after(async () => {
    await killAllCli();
    await issuer?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Starts serve with `env`, waits until ready (bounded), runs `work`, then SIGTERMs it and waits for the exit. */
  async function withServe(env: Record<string, string>, work: (port: number, cli: CliProcess) => Promise<void>): Promise<CliProcess> {
    const port = await freePort();
    const cli = startCli(['serve', '--config', configPath], { env: cliEnv({ PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ...env }) });
    let ready = false;
    for (let attempt = 0; attempt < 200 && !ready; attempt++) {
      try {
        ready = (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        // not listening yet
      }
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(ready, `the broker did not become ready\nstdout:\n${cli.stdout()}\nstderr:\n${cli.stderr()}`);
    await work(port, cli);
    cli.child.kill('SIGTERM');
    const exit = await within(20_000, 'serve to exit after SIGTERM', cli.exited);
    assert.equal(exit.code, 0, cli.stderr());
    return cli;
  }

  async function exchange(port: number, subject: string, headers: Record<string, string>): Promise<{ status: number; accessToken: string }> {
    const { status, body } = await postTokenExchange(`http://127.0.0.1:${port}`, subject, headers);
    return { status, accessToken: typeof body.access_token === 'string' ? body.access_token : '' };
  }

  function logLines(cli: CliProcess): Record<string, unknown>[] {
    return cli
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('OTEL_EXPORTER_OTLP_ENDPOINT alone turns tracing on: the exchange\'s spans reach the receiver with the caller\'s trace id', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const traceId = hex(16);
      const parentId = hex(8);
      const subject = await issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner' });
      let accessToken = '';
      const cli = await withServe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, async (port) => {
        const answer = await exchange(port, subject, { traceparent: `00-${traceId}-${parentId}-01` });
        assert.equal(answer.status, 200);
        accessToken = answer.accessToken;
      });

      // Exported by the batch processor at the latest on shutdown, which the exit above waited for.
      assert.ok(receiver.received.length > 0, `the receiver got an export\nstdout:\n${cli.stdout()}`);
      for (const r of receiver.received) {
        assert.equal(r.method, 'POST');
        assert.equal(r.path, '/v1/traces');
        assert.match(r.contentType, /^application\/json/);
      }
      const resource = receiver.received[0]?.request.resourceSpans[0]?.resource;
      assert.equal(attribute(resource?.attributes, 'service.name')?.stringValue, 'token-broker', 'the default service name');

      const trace = spansOf(receiver.received).filter((span) => span.traceId === traceId);
      const root = trace.find((span) => span.name === 'POST /token');
      assert.ok(root !== undefined, `the exchange span, among ${trace.map((s) => s.name).join(', ')}`);
      assert.equal(root.parentSpanId, parentId, 'child of the caller\'s span');
      assert.equal(root.kind, 2, 'SPAN_KIND_SERVER');
      assert.equal(attribute(root.attributes, 'token_broker.outcome')?.stringValue, 'issued');
      const children = trace.filter((span) => span.parentSpanId === root.spanId).map((span) => span.name).sort();
      assert.deepEqual(children, ['sign access token', 'verify subject token']);

      const line = logLines(cli).find((l) => l.msg === 'exchange succeeded');
      assert.equal(line?.traceId, traceId, 'the log line names the same trace');
      for (const r of receiver.received) {
        assert.equal(r.raw.includes(subject), false, 'no subject token exported');
        assert.equal(r.raw.includes(accessToken), false, 'no access token exported');
        assert.equal(r.raw.includes(subject.split('.')[2] as string), false, 'no subject token signature exported');
      }
    } finally {
      await receiver.close();
    }
  });

  it('OTEL_SDK_DISABLED=true wins over an endpoint: nothing is exported, and a valid traceparent\'s id is still logged', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const traceId = hex(16);
      const cli = await withServe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: 'true' }, async (port) => {
        const answer = await exchange(port, await issuer.projectedToken({ namespace: 'payments' }), { traceparent: `00-${traceId}-${hex(8)}-01` });
        assert.equal(answer.status, 200);
      });
      assert.deepEqual(receiver.received, []);
      const lines = logLines(cli);
      assert.equal(lines.find((l) => l.msg === 'exchange succeeded')?.traceId, traceId);
      assert.equal(lines.some((l) => l.component === 'tracing'), false, 'tracing never started');
    } finally {
      await receiver.close();
    }
  });
});
