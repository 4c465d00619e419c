import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { decodeJwt } from 'jose';
import { parse } from 'yaml';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import type { BrokerConfig } from '../../src/server/config/schema.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { buildDescribedTykPolicy } from '../../src/tools/tyk-kit/tyk-policies.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { startStandInKubernetes, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { startStandInTyk, type StandInTyk, type StandInTykProxyReason } from '../fakes/stand-in-tyk.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { captureLogs, type LogCapture } from '../support/log-capture.js';
import { BROKER_EXAMPLE_CONFIG, exchangeStepOf, loadArgoExamples, renderParameters } from '../examples/argo-examples.js';
import { API_OPTIONS } from '../tyk/token-profile.js';

/*
 * The exchanging step of examples/argo/orders-sync.yaml, its script taken VERBATIM from the YAML and run with
 * `sh` and the real curl, as Argo runs a script template, against:
 *   - a running broker (createBroker, listening on 127.0.0.1), with pod binding on;
 *   - a stand-in cluster: the stand-in issuer signs projected tokens that the test writes into the pod's token
 *     volume the way the kubelet does (files in a timestamped directory, swapped in by renaming `..data`), and
 *     the stand-in Kubernetes API knows the step's Argo pod;
 *   - a stand-in Tyk: a loopback HTTP server whose every request goes through standInTyk.proxy() (Tyk's JWT
 *     rules, the broker's JWKS fetched over HTTP) and, when Tyk lets it through, gets an upstream echo.
 * The environment is the template's own `env`, with its URLs pointed at loopback and its absolute paths put
 * under a temporary root. One clock drives the issuer, the broker, the cluster and Tyk.
 */

const examples = loadArgoExamples();
const step = exchangeStepOf(examples);
const TOOLS = ['sh', 'curl', 'sed', 'tr', 'cut', 'base64', 'date', 'dirname', 'mkdir', 'cat', 'sleep'];
const NAMESPACE = 'payments';
const SERVICE_ACCOUNT = 'argo-workflow-runner';
/** The read-only workload's service account (examples/argo/orders-report.yaml). */
const READER_SERVICE_ACCOUNT = String(
  (examples.find((e) => e.kind === 'WorkflowTemplate' && e.name === 'orders-report')?.doc as { spec?: { serviceAccountName?: string } } | undefined)?.spec
    ?.serviceAccountName,
);
const POLICIES = ['payments-read', 'payments-write'];
/**
 * The example configuration's rules and policy descriptions, as written (config/broker.example.yaml), under its
 * issuer name `in-cluster`: what the examples assume the broker is configured with, not a copy made for the test.
 */
const exampleConfig = parse(readFileSync(BROKER_EXAMPLE_CONFIG, 'utf8')) as { rules: unknown[]; policies: Record<string, unknown> };
/** Run bound for one script: generous for a loaded machine, far below the test timeout. */
const STEP_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 45_000;
/** How far the clock jumps while the step sleeps: past the subject token's lifetime plus the broker's skew. */
const ROTATION_JUMP_SECONDS = 1000;

/** Why the step cannot run here, or false. A missing tool outside CI skips; with CI=true it fails the suite. */
function missingToolsReason(): string | false {
  const missing = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length === 0) return false;
  const reason = `not on PATH: ${missing.join(', ')} (the step image has them)`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}: .ci/run must install them`);
  return reason;
}
const SKIP = missingToolsReason();

/**
 * A projected volume as the kubelet's atomic writer keeps it: the files in `..<timestamp>/`, `..data` a symlink
 * to that directory, and each file a symlink through `..data`. An update writes a new directory and renames a
 * new `..data` over the old one, so a reader sees the old token or the new one, never half of either.
 */
class ProjectedTokenVolume {
  private generation = 0;
  private current: string | undefined;

  constructor(
    readonly dir: string,
    readonly fileName: string,
  ) {}

  async write(token: string): Promise<void> {
    this.generation += 1;
    const dataDir = join(this.dir, `..2025_01_01_00_00_0${this.generation}.000000001`);
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, this.fileName), token, { mode: 0o644 });
    const link = join(this.dir, '..data_tmp');
    await symlink(basename(dataDir), link);
    await rename(link, join(this.dir, '..data'));
    if (this.current === undefined) await symlink(join('..data', this.fileName), join(this.dir, this.fileName));
    else await rm(this.current, { recursive: true, force: true });
    this.current = dataDir;
  }
}

/** One request the stand-in gateway received, with what Tyk decided. */
interface GatewayCall {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly token: string;
  readonly status: number;
  readonly reason: StandInTykProxyReason;
}

interface Gateway {
  readonly url: string;
  readonly calls: GatewayCall[];
  /** Runs after Tyk decided and before the answer is sent: what the "kubelet" does while the step waits. */
  onCall: ((call: GatewayCall) => Promise<void>) | undefined;
  close(): Promise<void>;
}

/** Tyk in front of the Orders API: Tyk's decision by standInTyk.proxy(), then an upstream echo on success. */
async function startGateway(tyk: StandInTyk, listenPath: string): Promise<Gateway> {
  const calls: GatewayCall[] = [];
  const gateway: Gateway = {
    url: '',
    calls,
    onCall: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://gateway');
      const authorization = req.headers.authorization;
      const method = req.method ?? 'GET';
      const result = await tyk.proxy(url.pathname, authorization, method);
      const call: GatewayCall = {
        method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        token: (authorization ?? '').replace(/^Bearer /, ''),
        status: result.status,
        reason: result.reason,
      };
      calls.push(call);
      await gateway.onCall?.(call);
      if (result.status !== 200 || 'error' in result.body) {
        // What Tyk sends: its status and {"error": message}, never the stand-in's reason or detail.
        res.writeHead(result.status, { 'content-type': 'application/json' }).end(JSON.stringify(result.body));
        return;
      }
      // The upstream's answer: what it was asked and under which Tyk session (Tyk strips the listen path).
      const echo = {
        upstream: 'orders',
        method: req.method,
        path: url.pathname.slice(listenPath.length - 1),
        query: call.query,
        apiId: result.body.api_id,
        identity: result.body.identity,
        policies: result.body.policies,
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echo));
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(gateway, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

interface StepRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a script with `sh` in its own process group, killed (group and all) when it overruns. */
function runScript(scriptPath: string, env: Record<string, string>, cwd: string): Promise<StepRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [scriptPath], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, STEP_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64url');
const jsonLines = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('examples/argo orders-sync: the step\'s script, verbatim, against a broker, a stand-in cluster and a stand-in Tyk', { skip: SKIP, timeout: 120_000 }, () => {
  let clock: TestClock;
  let issuer: StandInIssuer;
  let otherCluster: StandInIssuer;
  let kube: StandInKubernetes;
  let tyk: StandInTyk;
  let gateway: Gateway;
  let broker: Broker;
  let brokerServer: Server;
  let brokerUrl: string;
  let config: BrokerConfig;
  let logs: LogCapture;
  let dir: string;

  before(async () => {
    clock = createTestClock();
    dir = await mkdtemp(join(tmpdir(), 'tb-argo-step-'));
    issuer = await startStandInIssuer({ audience: step.token.audience ?? '', now: clock.now });
    otherCluster = await startStandInIssuer({ audience: step.token.audience ?? '', now: clock.now });
    kube = await startStandInKubernetes({ now: clock.now });
    const kubeconfig = await kube.writeKubeconfig(dir);
    kube.putNamespace(NAMESPACE);
    kube.putServiceAccount(NAMESPACE, SERVICE_ACCOUNT);
    kube.putServiceAccount(NAMESPACE, READER_SERVICE_ACCOUNT);

    // The broker's public URL must be known before it is built (it is the `iss` of its tokens): listen first.
    brokerServer = createServer();
    await new Promise<void>((resolve) => brokerServer.listen(0, '127.0.0.1', resolve));
    brokerUrl = `http://127.0.0.1:${(brokerServer.address() as AddressInfo).port}`;
    const validation = validateConfig({
      server: { publicUrl: brokerUrl },
      issuers: [
        { name: 'in-cluster', issuer: issuer.issuer, audiences: [step.token.audience], kind: 'kubernetes', clockSkewSeconds: 30 },
        // The example rules also name this issuer; no step here presents its tokens.
        { name: 'eks-prod', issuer: otherCluster.issuer, audiences: [step.token.audience], kind: 'kubernetes', clockSkewSeconds: 30 },
      ],
      signing: { algorithm: 'ES256', keysDir: '/unused/in/tests' },
      tokens: { audience: 'tyk' },
      kubernetes: { kubeconfig, podBinding: 'enforce' },
      rules: exampleConfig.rules,
      policies: exampleConfig.policies,
    });
    if (!validation.ok) throw new Error(`e2e config invalid: ${JSON.stringify(validation.problems)}`);
    config = validation.config;
    logs = captureLogs();
    const signingKeys = staticSigningKeySet([await generateSigningKey(config.signing.algorithm, clock.now())]);
    broker = createBroker(config, { logger: logs.logger, signingKeys, now: clock.now });
    brokerServer.on('request', broker.app);

    // Tyk configured with what `token-broker tyk api` and `tyk policies` generate from the same configuration.
    tyk = await startStandInTyk({ now: clock.now });
    for (const [id, spec] of Object.entries(config.policies ?? {})) tyk.addPolicy(buildDescribedTykPolicy(id, spec, 'default'));
    await tyk.addApi(
      buildTykOasApiDefinition(config, API_OPTIONS),
    );
    gateway = await startGateway(tyk, '/orders/');
  });

  after(async () => {
    await gateway?.close();
    await tyk?.close();
    await broker?.close();
    await new Promise<void>((resolve) => {
      if (brokerServer === undefined) return resolve();
      brokerServer.closeAllConnections();
      brokerServer.close(() => resolve());
    });
    await kube?.close();
    await issuer?.close();
    await otherCluster?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** A step's pod: on the stand-in API, with its token volume and filesystem under its own root. */
  interface Pod {
    readonly name: string;
    readonly uid: string;
    readonly root: string;
    readonly volume: ProjectedTokenVolume;
    /** A fresh projected token for this pod, as the kubelet requests it: the template's audience and lifetime. */
    token(): Promise<string>;
    receipts(): Promise<string>;
  }

  async function startPod(workflow: string, serviceAccount = SERVICE_ACCOUNT): Promise<Pod> {
    const created = kube.putArgoPod({ namespace: NAMESPACE, workflow, template: step.templateName, serviceAccountName: serviceAccount });
    const root = join(dir, created.metadata.name);
    const volume = new ProjectedTokenVolume(join(root, step.mountPath), step.token.path);
    const env = new Map(step.env);
    return {
      name: created.metadata.name,
      uid: created.metadata.uid,
      root,
      volume,
      token: () =>
        issuer.projectedToken({
          namespace: NAMESPACE,
          serviceAccount,
          podName: created.metadata.name,
          podUid: created.metadata.uid,
          ...(step.token.audience !== undefined && { audience: step.token.audience }),
          ...(step.token.expirationSeconds !== undefined && { lifetimeSeconds: step.token.expirationSeconds }),
        }),
      receipts: () => readFile(join(root, env.get('RECEIPTS_FILE') ?? '/missing'), 'utf8'),
    };
  }

  /**
   * The script's environment, the way the template sets it: every `env` entry of the script, URLs pointed at
   * the loopback broker and gateway, absolute paths under the pod's root, parameters rendered. Nothing else from
   * the test's environment leaks in but PATH (no proxies, no ~/.curlrc).
   */
  function stepEnvironment(pod: Pod, parameters: Record<string, string>): Record<string, string> {
    const values = new Map(step.inputDefaults);
    for (const [name, value] of Object.entries(parameters)) {
      assert.ok(values.has(name), `${name} is an input of ${step.templateName}`);
      values.set(name, value);
    }
    const urls: Record<string, string> = { BROKER_URL: brokerUrl, GATEWAY_URL: gateway.url };
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: pod.root, LC_ALL: 'C' };
    for (const [name, value] of step.env) {
      if (/^https?:\/\//.test(value)) {
        const url = urls[name];
        assert.ok(url !== undefined, `the test knows where ${name} (${value}) points`);
        env[name] = url;
      } else if (value.startsWith('/')) {
        env[name] = join(pod.root, value);
      } else {
        env[name] = renderParameters(value, values);
      }
    }
    return env;
  }

  /** Writes the script exactly as the YAML holds it, where Argo would put it, and runs it with `sh`. */
  async function runStep(pod: Pod, parameters: Record<string, string>, env = stepEnvironment(pod, parameters)): Promise<StepRun> {
    const scriptPath = join(pod.root, 'argo', 'staging', 'script');
    await mkdir(join(pod.root, 'argo', 'staging'), { recursive: true });
    await writeFile(scriptPath, step.source, { mode: 0o644 });
    return runScript(scriptPath, env, pod.root);
  }

  const auditLines = () => logs.lines.filter((line) => line.audit === true);
  const nowSeconds = (): number => Math.floor(clock.now() / 1000);

  it('two calls through Tyk, the kubelet rotating the token file in between: both succeed, each with its own exchange and receipt', { timeout: TEST_TIMEOUT_MS }, async () => {
    const pod = await startPod('orders-sync-x7k2p');
    const firstSubject = await pod.token();
    await pod.volume.write(firstSubject);
    let secondSubject: string | undefined;
    const callsBefore = gateway.calls.length;
    const auditBefore = auditLines().length;

    // While the step sleeps after its first call, time passes beyond the first token's lifetime and the kubelet
    // rewrites the file: a step that kept the first token (or the first broker token) would now fail.
    gateway.onCall = async () => {
      if (gateway.calls.length !== callsBefore + 1) return;
      clock.advance(ROTATION_JUMP_SECONDS);
      secondSubject = await pod.token();
      await pod.volume.write(secondSubject);
    };
    const run = await runStep(pod, { shard: 'eu-1', pages: '2', 'pause-seconds': '1' }).finally(() => (gateway.onCall = undefined));

    assert.equal(run.code, 0, `exit ${String(run.code)} ${String(run.signal)}\nstderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
    assert.equal(run.stderr, 'shard eu-1: page 1 of 2\nshard eu-1: page 2 of 2\n');
    assert.ok(secondSubject !== undefined, 'the token file was rotated');

    // The upstream answered both pages, each under the workload's Tyk session and the policies the broker granted.
    const echo = { upstream: 'orders', method: 'GET', path: '/v1/orders', apiId: 'orders', identity: `system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`, policies: POLICIES };
    assert.deepEqual(jsonLines(run.stdout), [
      { ...echo, query: { shard: 'eu-1', page: '1' } },
      { ...echo, query: { shard: 'eu-1', page: '2' } },
    ]);
    const calls = gateway.calls.slice(callsBefore);
    assert.deepEqual(
      calls.map(({ path, query, status, reason }) => ({ path, query, status, reason })),
      [
        { path: '/orders/v1/orders', query: { shard: 'eu-1', page: '1' }, status: 200, reason: 'ok' },
        { path: '/orders/v1/orders', query: { shard: 'eu-1', page: '2' }, status: 200, reason: 'ok' },
      ],
    );

    // Why the second call needed both the new file and a new exchange: by then the first subject token and the
    // first broker token had both expired.
    const [first, second] = calls.map((call) => decodeJwt(call.token));
    assert.ok(first !== undefined && second !== undefined);
    assert.ok(Number(decodeJwt(firstSubject).exp) < nowSeconds() - 30, 'the first subject token is past its expiry and the broker\'s skew');
    assert.ok(Number(first.exp) < nowSeconds(), 'the first broker token is expired for Tyk');
    assert.notEqual(first.jti, second.jti);

    // The broker issued two tokens, for the old subject token and then for the rewritten one.
    const audit = auditLines().slice(auditBefore);
    assert.deepEqual(
      audit.map((line) => ({ jti: line.jti, pod: line.pod, policies: line.policies, subjectTokenSha256: line.subjectTokenSha256, accessTokenSha256: line.accessTokenSha256 })),
      [
        { jti: first.jti, pod: pod.name, policies: POLICIES, subjectTokenSha256: sha256(firstSubject), accessTokenSha256: sha256(calls[0]?.token ?? '') },
        { jti: second.jti, pod: pod.name, policies: POLICIES, subjectTokenSha256: sha256(secondSubject), accessTokenSha256: sha256(calls[1]?.token ?? '') },
      ],
    );

    // One receipt per exchange: the RFC 8693 response without the token, plus the token's claims, matching the
    // audit record by jti. No token in the file, neither the subject tokens nor the access tokens.
    const receiptsText = await pod.receipts();
    for (const secret of [firstSubject, secondSubject, ...calls.map((call) => call.token)]) assert.equal(receiptsText.includes(secret), false);
    const receipts = jsonLines(receiptsText);
    assert.equal(receipts.length, 2);
    receipts.forEach((receipt, i) => {
      const claims = [first, second][i];
      assert.deepEqual(Object.keys(receipt), ['exchanged_at', 'trace_id', 'claims', 'issued_token_type', 'token_type', 'expires_in', 'scope']);
      assert.match(String(receipt.exchanged_at), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      // No trace context from Argo here: the step started its own trace, and the audit record names it too.
      assert.match(String(receipt.trace_id), /^[0-9a-f]{32}$/);
      assert.equal(receipt.trace_id, audit[i]?.traceId);
      assert.equal(receipt.trace_id, receipts[0]?.trace_id, 'one trace per step');
      assert.deepEqual(receipt.claims, claims);
      assert.deepEqual(
        { jti: (receipt.claims as Record<string, unknown>).jti, pol: claims?.pol, scope: claims?.scope, exp: claims?.exp },
        { jti: audit[i]?.jti, pol: 'payments-read', scope: 'payments-read payments-write', exp: audit[i]?.expiresAt },
      );
      assert.deepEqual(
        { issued_token_type: receipt.issued_token_type, token_type: receipt.token_type, expires_in: receipt.expires_in, scope: receipt.scope },
        { issued_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_type: 'Bearer', expires_in: 300, scope: 'payments-read payments-write' },
      );
    });
  });

  it('control: a step that keeps its first token fails at the second call with the broker\'s "expired" advice', { timeout: TEST_TIMEOUT_MS }, async () => {
    // The same script, reading a copy of the first token that nobody rewrites: what a step that read the file
    // once into a variable presents after the kubelet has moved on.
    const pod = await startPod('orders-sync-k33p5');
    const firstSubject = await pod.token();
    await pod.volume.write(firstSubject);
    const env = stepEnvironment(pod, { shard: 'eu-2', pages: '2', 'pause-seconds': '1' });
    const frozenCopy = join(pod.root, 'frozen-token');
    await writeFile(frozenCopy, firstSubject);
    env.TOKEN_FILE = frozenCopy;
    const callsBefore = gateway.calls.length;
    gateway.onCall = async () => {
      if (gateway.calls.length !== callsBefore + 1) return;
      clock.advance(ROTATION_JUMP_SECONDS);
      await pod.volume.write(await pod.token());
    };
    const run = await runStep(pod, {}, env).finally(() => (gateway.onCall = undefined));

    assert.equal(run.code, 1, run.stderr);
    assert.equal(gateway.calls.length - callsBefore, 1, 'only the first call reached Tyk');
    const failure = /^token exchange failed: (.*)$/m.exec(run.stderr);
    assert.ok(failure !== null, run.stderr);
    assert.deepEqual(JSON.parse(failure[1] ?? ''), {
      error: 'invalid_request',
      error_description:
        'The subject token expired 6m 40s ago. Its lifetime was 10m. This usually means the step read the projected token file once and kept it longer than its lifetime: re-read the file for every call, the kubelet rewrites it before it expires.',
      reason: 'expired',
    });
    assert.equal(jsonLines(await pod.receipts()).length, 1, 'one receipt, for the one exchange that succeeded');
  });

  it('fan-out: three pods run the step at once, each exchanging its own token, each with its own receipt', { timeout: TEST_TIMEOUT_MS }, async () => {
    const shards = ['us-1', 'us-2', 'ap-1'];
    const pods = await Promise.all(shards.map((shard) => startPod(`orders-fan-out-${shard}`)));
    for (const pod of pods) await pod.volume.write(await pod.token());
    const auditBefore = auditLines().length;

    const runs = await Promise.all(pods.map((pod, i) => runStep(pod, { shard: shards[i] ?? '', pages: '1', 'pause-seconds': '0' })));

    runs.forEach((run, i) => {
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        jsonLines(run.stdout).map((echo) => echo.query),
        [{ shard: shards[i], page: '1' }],
      );
    });
    const audit = auditLines().slice(auditBefore);
    assert.deepEqual(audit.map((line) => line.pod).sort(), pods.map((pod) => pod.name).sort());
    const receipts = await Promise.all(pods.map(async (pod) => jsonLines(await pod.receipts())));
    assert.deepEqual(
      receipts.map((lines) => lines.map((receipt) => (receipt.claims as Record<string, unknown>).jti)),
      pods.map((pod) => [audit.find((line) => line.pod === pod.name)?.jti]),
    );
    assert.equal(new Set(audit.map((line) => line.jti)).size, 3);
  });
  it('trace context: the step sends Argo\'s (ARGO_OTEL_traceparent), else TRACEPARENT, and never a malformed one; the receipt names the trace the broker logged', { timeout: TEST_TIMEOUT_MS }, async () => {
    const argoTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const carrierTraceId = '0af7651916cd43dd8448eb211c80319c';
    const cases: { env: Record<string, string>; expected: string | undefined }[] = [
      { env: { ARGO_OTEL_traceparent: `00-${argoTraceId}-00f067aa0ba902b7-01`, TRACEPARENT: `00-${carrierTraceId}-b7ad6b7169203331-01` }, expected: argoTraceId },
      { env: { ARGO_OTEL_traceparent: 'garbage";{"injected":1}', TRACEPARENT: `00-${carrierTraceId}-b7ad6b7169203331-01` }, expected: carrierTraceId },
      { env: { TRACEPARENT: `00-${'0'.repeat(32)}-b7ad6b7169203331-01x` }, expected: undefined },
    ];
    for (const [i, { env, expected }] of cases.entries()) {
      const pod = await startPod(`orders-sync-trace${i}`);
      await pod.volume.write(await pod.token());
      const auditBefore = auditLines().length;
      const run = await runStep(pod, { shard: 'eu-1', pages: '1', 'pause-seconds': '0' }, { ...stepEnvironment(pod, { shard: 'eu-1', pages: '1', 'pause-seconds': '0' }), ...env });
      assert.equal(run.code, 0, run.stderr);
      const [receipt] = jsonLines(await pod.receipts());
      const [audit] = auditLines().slice(auditBefore);
      assert.ok(receipt !== undefined && audit !== undefined);
      if (expected !== undefined) assert.equal(receipt.trace_id, expected);
      else assert.ok(receipt.trace_id !== carrierTraceId && /^[0-9a-f]{32}$/.test(String(receipt.trace_id)), 'a new trace when the given one is malformed');
      assert.equal(audit.traceId, receipt.trace_id, 'the audit record names the trace the receipt records');
      const exchangeLine = logs.lines.find((line) => line.requestId === audit.requestId && line.audit !== true);
      assert.equal(exchangeLine?.traceId, receipt.trace_id);
    }
  });

  /** Sends `method path` through the gateway with a bearer token, as any client would. */
  async function throughTyk(method: string, path: string, token: string): Promise<{ status: number; body: unknown }> {
    const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(withBody && { 'content-type': 'application/json' }) },
      ...(withBody && { body: '{}' }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  it('read-only and read-write workloads: the same step under orders-report\'s service account may read, and Tyk refuses its writes', { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.equal(READER_SERVICE_ACCOUNT, 'argo-orders-reader');
    const reader = await startPod('orders-report-m2x8d', READER_SERVICE_ACCOUNT);
    const writer = await startPod('orders-sync-w9v4t');
    await reader.volume.write(await reader.token());
    await writer.volume.write(await writer.token());
    const callsBefore = gateway.calls.length;

    const runs = { reader: await runStep(reader, { shard: 'eu-1', pages: '1' }), writer: await runStep(writer, { shard: 'eu-1', pages: '1' }) };
    for (const [who, run] of Object.entries(runs)) assert.equal(run.code, 0, `${who}: ${run.stderr}`);
    const [readerCall, writerCall] = gateway.calls.slice(callsBefore);
    assert.ok(readerCall !== undefined && writerCall !== undefined);
    assert.deepEqual(
      [readerCall, writerCall].map((call) => ({ method: call.method, path: call.path, status: call.status, scope: decodeJwt(call.token).scope })),
      [
        { method: 'GET', path: '/orders/v1/orders', status: 200, scope: 'payments-read' },
        { method: 'GET', path: '/orders/v1/orders', status: 200, scope: 'payments-read payments-write' },
      ],
    );
    assert.deepEqual(jsonLines(runs.reader.stdout).map((echo) => echo.policies), [['payments-read']]);

    // The tokens the steps were minted, replayed on every route of the Orders API.
    const routes: [string, string][] = [
      ['GET', '/orders/v1/orders/1'],
      ['HEAD', '/orders/v1/orders/1'],
      ['POST', '/orders/v1/orders'],
      ['PUT', '/orders/v1/orders/1'],
      ['PATCH', '/orders/v1/orders/1'],
      ['DELETE', '/orders/v1/orders/1'],
    ];
    const outcomes = async (token: string) =>
      Object.fromEntries(await Promise.all(routes.map(async ([method, path]) => [`${method} ${path}`, await throughTyk(method, path, token)] as const)));
    const refused = { status: 403, body: { error: 'Access to this resource has been disallowed' } };
    const passedFor = (method: string, path: string) => ({ status: 200, body: method === 'HEAD' ? undefined : { upstream: 'orders', method, path: path.slice('/orders'.length), query: {}, apiId: 'orders' } });
    const strip = (results: Record<string, { status: number; body: unknown }>) =>
      Object.fromEntries(
        Object.entries(results).map(([route, { status, body }]) => {
          if (typeof body !== 'object' || body === null || !('upstream' in body)) return [route, { status, body }];
          const { identity: _identity, policies: _policies, ...rest } = body as Record<string, unknown>;
          return [route, { status, body: rest }];
        }),
      );
    assert.deepEqual(strip(await outcomes(readerCall.token)), {
      'GET /orders/v1/orders/1': passedFor('GET', '/orders/v1/orders/1'),
      'HEAD /orders/v1/orders/1': passedFor('HEAD', '/orders/v1/orders/1'),
      'POST /orders/v1/orders': refused,
      'PUT /orders/v1/orders/1': refused,
      'PATCH /orders/v1/orders/1': refused,
      'DELETE /orders/v1/orders/1': refused,
    });
    assert.deepEqual(
      strip(await outcomes(writerCall.token)),
      Object.fromEntries(routes.map(([method, path]) => [`${method} ${path}`, passedFor(method, path)])),
    );
    // Tyk's reason for each refusal: the route, not the API, is what the reader's policy does not open.
    assert.deepEqual(
      [...new Set(gateway.calls.slice(callsBefore).filter((call) => call.status === 403).map((call) => call.reason))],
      ['resource_disallowed'],
    );
  });
});
