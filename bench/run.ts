/**
 * `npm run bench`: throughput, latency and memory of POST /token on loopback, against a bare Express baseline.
 *
 * One run starts everything it needs and stops it again: the stand-in issuer (test/fakes/stand-in-issuer.ts, in
 * this process), a redis-server on a free loopback port (test/support/redis-server.ts), and each broker as a child
 * process (`node <compiled>/src/main.js serve --config FILE`, the real start-up path with a generated config and
 * keys directory), so autocannon here never shares the broker's event loop. Every broker run is a fresh process,
 * warmed up first, so no run inherits another's cache; every load loop is bounded by a duration and, where tokens
 * must not repeat, by the pool size.
 *
 * Options: --runs N (3) --duration S (10) --connections N (32) --only a,b (scenario names or ids, `baseline`,
 * `floor`, `floor+log`, `memory`) --quick (1 run, 5 s, 20,000 identities for the memory check) --profile (CPU-profile the broker on hit
 * and miss; writes bench/results/<label>-<scenario>.cpuprofile) --label NAME (also writes bench/results/<label>.json)
 * --memory-identities N (100000) --no-memory --no-latency --variant NAME=DIR (repeatable: A/B source trees, runs
 * interleaved) --node-options=FLAGS (instead of the deployment's NODE_OPTIONS) --pin-server CPU (servers on that CPU, with
 * taskset; run the bench itself on the others). bench/README.md explains the output.
 */
import autocannon, { type Instance } from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startStandInIssuer, type StandInIssuer } from '../test/fakes/stand-in-issuer.js';
import { startStandInKubernetes, type StandInKubernetes } from '../test/fakes/stand-in-kubernetes.js';
import { freePort, redisUnavailableReason, startRedisServer, type RedisServer } from '../test/support/redis-server.js';
import { summarizeCpuProfile, type ProfileSummary } from './profile-summary.js';
import type { BrokerConfigInput, RuleConfig } from '../src/server/config/schema.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
/**
 * The broker and the baseline run as compiled JavaScript, as in production (`node dist/main.js`), not through tsx:
 * tsx's off-thread loader and source maps add ~150 MB of RSS to a process, which would swamp the memory figures.
 * The build goes under node_modules/.cache (ignored by git, and node_modules resolves from there) instead of dist/,
 * which other tools own.
 */
const BUILD = join(ROOT, 'node_modules', '.cache', 'token-broker-bench');
const BASELINE_BUILT = join(BUILD, 'out-baseline');
const FLOOR_BUILT = join(BUILD, 'out-floor');
const OPEN_LOOP_BUILT = join(BUILD, 'out-open-loop-client');
const OPEN_LOOP_CLIENT = join(OPEN_LOOP_BUILT, 'bench', 'open-loop-client.js');
const AUDIENCE = 'tyk-token-broker';
const ISSUER_NAME = 'bench-cluster';
const FORM_PREFIX =
  'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange' +
  '&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token=';
const MISS_POOL = 10_000;
/** kubernetes/miss-pod-reused: subject tokens per pod, one per scope in POD_SCOPES (MISS_POOL / this many pods). */
const TOKENS_PER_POD = 4;
/** Distinct scopes the default rules grant (see defaultRules): each makes a distinct grant, so a distinct mint. */
const POD_SCOPES = ['payments-read', 'payments-write', 'status-read', 'payments-read payments-write'] as const;
const WARM_POOL = 2_000;
const EXPIRED_POOL = 1_000;
const WARM_UP_SECONDS = 2;
/** Idle seconds after the memory check's burst before its settled RSS is read (see MemoryCheck.rssMbSettled). */
const SETTLE_SECONDS = 15;

// --- options --------------------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    label: { type: 'string' },
    'memory-identities': { type: 'string' },
    'no-memory': { type: 'boolean', default: false },
    'no-latency': { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true },
    'node-options': { type: 'string' },
    'pin-server': { type: 'string' },
  },
  strict: true,
});

/**
 * A broker source tree to measure. By default the working tree; with `--variant NAME=DIR` (repeatable) each DIR
 * holding a src/ (a snapshot under node_modules/.cache, so its imports resolve) is built and measured, the runs of
 * all variants interleaved (run 1 of each, then run 2 of each, ...) so that a before/after comparison sees the same
 * machine load.
 */
interface Variant {
  readonly name: string;
  readonly root: string;
  readonly main: string;
  /** The NODE_OPTIONS its brokers run with: its own tree's deployment, so an A/B of a V8 flag is one run. */
  readonly nodeOptions: string;
}

function parseVariants(specs: readonly string[] | undefined): Variant[] {
  const list = specs === undefined || specs.length === 0 ? [`current=${ROOT}`] : specs;
  return list.map((spec) => {
    const at = spec.indexOf('=');
    if (at < 1) throw new Error(`--variant NAME=DIR, got "${spec}"`);
    const name = spec.slice(0, at);
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(name)) throw new Error(`--variant name "${name}": letters, digits and dashes`);
    const root = resolve(spec.slice(at + 1));
    if (!existsSync(join(root, 'src', 'main.ts'))) throw new Error(`--variant ${name}: ${root}/src/main.ts not found`);
    return { name, root, main: join(BUILD, `out-${name}`, 'src', 'main.js'), nodeOptions: args['node-options'] ?? deploymentNodeOptions(root) };
  });
}

function intOption(value: string | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

const OPTIONS = {
  runs: intOption(args.runs, args.quick ? 1 : 3, 1, 9, 'runs'),
  durationSeconds: intOption(args.duration, args.quick ? 5 : 10, 2, 60, 'duration'),
  connections: intOption(args.connections, 32, 3, 512, 'connections'),
  memoryIdentities: intOption(args['memory-identities'], args.quick ? 20_000 : 100_000, 1_000, 200_000, 'memory-identities'),
  only: args.only === undefined ? undefined : new Set(args.only.split(',').map((s) => s.trim())),
  profile: args.profile,
  label: args.label,
  memory: !args['no-memory'],
  latency: !args['no-latency'],
  variants: parseVariants(args.variant),
  /** A CPU for the servers (broker, baseline, floor) to run on, with taskset; the open-loop client is not pinned. */
  pinServer: args['pin-server'] === undefined ? undefined : intOption(args['pin-server'], 0, 0, cpus().length - 1, 'pin-server'),
};

// --- scenarios ------------------------------------------------------------------------------------------------

type Traffic = 'hit' | 'miss' | 'miss-pod-reused' | 'mixed' | 'reject';

interface Scenario {
  /** Unique: `${cache}/${name}`, or `kubernetes/${name}` for the scenarios with pod binding. */
  readonly id: string;
  readonly name: string;
  readonly cache: 'memory' | 'redis';
  readonly traffic: Traffic;
  readonly replicas: number;
  readonly ruleCount: 'default' | 1000;
  readonly expectStatus: number;
  readonly what: string;
  /** Pod binding enforced against the stand-in Kubernetes API (namespace and service-account lookups cached). */
  readonly kubernetes?: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { id: 'memory/hit', name: 'hit', cache: 'memory', traffic: 'hit', replicas: 1, ruleCount: 'default', expectStatus: 200, what: 'the same subject token re-presented' },
  { id: 'memory/miss', name: 'miss', cache: 'memory', traffic: 'miss', replicas: 1, ruleCount: 'default', expectStatus: 200, what: 'a fresh identity per request (verify + mint)' },
  { id: 'memory/mixed', name: 'mixed', cache: 'memory', traffic: 'mixed', replicas: 1, ruleCount: 'default', expectStatus: 200, what: '90% hit / 10% miss' },
  { id: 'memory/reject', name: 'reject', cache: 'memory', traffic: 'reject', replicas: 1, ruleCount: 'default', expectStatus: 400, what: 'expired subject tokens (400 expired)' },
  { id: 'memory/rules-1000', name: 'rules-1000', cache: 'memory', traffic: 'hit', replicas: 1, ruleCount: 1000, expectStatus: 200, what: 'hit with 1,000 rules loaded' },
  { id: 'kubernetes/miss', name: 'miss', cache: 'memory', traffic: 'miss', replicas: 1, ruleCount: 'default', expectStatus: 200, kubernetes: true, what: 'miss with pod binding enforced against the stand-in Kubernetes API: a pod GET per new pod, service accounts cached' },
  {
    id: 'kubernetes/miss-pod-reused',
    name: 'miss-pod-reused',
    cache: 'memory',
    traffic: 'miss-pod-reused',
    replicas: 1,
    ruleCount: 'default',
    expectStatus: 200,
    kubernetes: true,
    what: `miss with pod binding enforced, the pod lookup cached: each pod presents ${TOKENS_PER_POD} subject tokens in a row (as its containers and kubelet refreshes do), each asking a different scope, so every exchange verifies and mints`,
  },
  { id: 'redis/hit', name: 'hit', cache: 'redis', traffic: 'hit', replicas: 1, ruleCount: 'default', expectStatus: 200, what: 'hit, token cache in Redis' },
  { id: 'redis/miss', name: 'miss', cache: 'redis', traffic: 'miss', replicas: 1, ruleCount: 'default', expectStatus: 200, what: 'miss, token cache and mint lock in Redis' },
  { id: 'redis/mixed', name: 'mixed', cache: 'redis', traffic: 'mixed', replicas: 1, ruleCount: 'default', expectStatus: 200, what: '90/10, token cache in Redis' },
  { id: 'redis/replicas-3', name: 'replicas-3', cache: 'redis', traffic: 'mixed', replicas: 3, ruleCount: 'default', expectStatus: 200, what: '90/10 over 3 broker processes sharing one Redis, connections split evenly' },
];

function selected(name: string, id?: string): boolean {
  return OPTIONS.only === undefined || OPTIONS.only.has(name) || (id !== undefined && OPTIONS.only.has(id));
}

// --- small helpers --------------------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load1 = (): number => round(loadavg()[0] ?? 0);

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Resident set size of a process in MB, from /proc (Linux); undefined elsewhere. */
/**
 * CPU time (user + system) of a process or of one of its threads, in microseconds, from a /proc stat file (Linux).
 * CPU time per request is the figure least disturbed by other work on the machine: contention lowers req/s, but
 * barely changes how much CPU each request costs.
 */
function statCpuMicros(path: string): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15, in clock ticks (USER_HZ).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux the bench is likely to meet (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = (() => {
  const getconf = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(getconf.stdout?.trim());
  return getconf.status === 0 && value > 0 ? value : 100;
})();

/**
 * CPU microseconds of each thread of a process, by thread id (`pid` itself is the main thread: the event loop with
 * JavaScript, the main thread's GC pauses, the system calls JavaScript makes). The others are V8's concurrent and
 * parallel GC helpers and the libuv pool that runs RSA signatures. A CPU profile sees only the main thread.
 */
function threadCpuMicros(pid: number | undefined): Map<string, number> | undefined {
  if (pid === undefined) return undefined;
  const threads = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      // A thread that ended between the listing and the read is left out, not counted as zero (which would subtract
      // its earlier time from the run's).
      const used = statCpuMicros(`/proc/${pid}/task/${tid}/stat`);
      if (used !== undefined) threads.set(`${pid}/${tid}`, used);
    }
  } catch {
    return undefined;
  }
  return threads;
}

/** CPU microseconds the processes spent per request during `measure`, and how much of it their main threads spent. */
async function cpuPerRequest<T extends { readonly requests: number }>(
  pids: readonly (number | undefined)[],
  measure: () => Promise<T>,
): Promise<T & { readonly cpuUsPerRequest: number | undefined; readonly mainThreadCpuUsPerRequest: number | undefined }> {
  const snapshot = (): Map<string, number> | undefined => {
    const all = new Map<string, number>();
    for (const pid of pids) {
      const threads = threadCpuMicros(pid);
      if (threads === undefined) return undefined;
      for (const [id, used] of threads) all.set(id, used);
    }
    return all;
  };
  const before = snapshot();
  const result = await measure();
  const after = snapshot();
  if (before === undefined || after === undefined || result.requests === 0) return { ...result, cpuUsPerRequest: undefined, mainThreadCpuUsPerRequest: undefined };
  // Per thread, so a thread started during the run counts from zero; one that ended during it is not counted.
  let total = 0;
  let main = 0;
  const mainThreads = new Set(pids.map((pid) => `${pid}/${pid}`));
  for (const [id, used] of after) {
    const spent = used - (before.get(id) ?? 0);
    total += spent;
    if (mainThreads.has(id)) main += spent;
  }
  return { ...result, cpuUsPerRequest: Math.round(total / result.requests), mainThreadCpuUsPerRequest: Math.round(main / result.requests) };
}

function rssMb(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? undefined : round(Number(match[1]) / 1024, 1);
  } catch {
    return undefined;
  }
}

// --- tokens ---------------------------------------------------------------------------------------------------

/** Signs `count` projected tokens, each a distinct workload (its own pod name and UID). */
async function signPool(issuer: StandInIssuer, count: number, prefix: string, offsetSeconds = 0, pods?: BenchPod[]): Promise<string[]> {
  const tokens: string[] = new Array<string>(count);
  const batch = 256;
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const signed = await Promise.all(
      Array.from({ length: end - start }, (_, k) => {
        const i = start + k;
        const pod = { namespace: `payments-${i % 50}`, name: `${prefix}-${i}-call-api-${1_000_000_000 + i}`, uid: randomUUID() };
        pods?.push(pod);
        return issuer.projectedToken({
          namespace: pod.namespace,
          serviceAccount: 'argo-runner',
          podName: pod.name,
          podUid: pod.uid,
          lifetimeSeconds: 3600,
          offsetSeconds,
        });
      }),
    );
    for (let k = 0; k < signed.length; k++) tokens[start + k] = FORM_PREFIX + String(signed[k]);
  }
  return tokens;
}

/**
 * Bodies for kubernetes/miss-pod-reused: `pods` pods, each presenting TOKENS_PER_POD distinct subject tokens one
 * after the other, each with its own scope. The first exchange of a pod looks the pod up; the next ones, within the
 * pod lookup's 10 s lifetime, are answered from the lookup cache, and each still verifies its token and mints.
 */
async function signPodReusedPool(issuer: StandInIssuer, pods: number, into: BenchPod[]): Promise<string[]> {
  const bodies: string[] = [];
  const batch = 64;
  for (let start = 0; start < pods; start += batch) {
    const end = Math.min(pods, start + batch);
    const signed = await Promise.all(
      Array.from({ length: end - start }, async (_, k) => {
        const i = start + k;
        const pod = { namespace: `payments-${i % 50}`, name: `reused-${i}-call-api-${1_000_000_000 + i}`, uid: randomUUID() };
        into.push(pod);
        const tokens = await Promise.all(
          POD_SCOPES.slice(0, TOKENS_PER_POD).map(() =>
            issuer.projectedToken({ namespace: pod.namespace, serviceAccount: 'argo-runner', podName: pod.name, podUid: pod.uid, lifetimeSeconds: 3600 }),
          ),
        );
        return tokens.map((token, t) => `${FORM_PREFIX}${token}&scope=${encodeURIComponent(POD_SCOPES[t] as string)}`);
      }),
    );
    for (const group of signed) bodies.push(...group);
  }
  return bodies;
}

/** The pod a pool token is bound to, for the stand-in Kubernetes API of the kubernetes scenarios. */
interface BenchPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

interface Pools {
  readonly hit: string;
  readonly miss: readonly string[];
  /** TOKENS_PER_POD consecutive bodies per pod, each a new subject token with its own scope (kubernetes/miss-pod-reused). */
  readonly podReused: readonly string[];
  readonly warm: readonly string[];
  readonly expired: readonly string[];
}

// --- configuration --------------------------------------------------------------------------------------------

function defaultRules(): RuleConfig[] {
  return [
    {
      name: 'payments-ci',
      match: { issuers: [ISSUER_NAME], namespaces: ['payments', 'payments-*'], serviceAccounts: ['argo-*'] },
      policies: ['payments-read', 'payments-write'],
      ttlSeconds: 600,
    },
    { name: 'everyone-reads-status', match: { namespaces: ['*'] }, policies: ['status-read'] },
  ] as RuleConfig[];
}

/**
 * 1,000 rules shaped like a large multi-team installation: one or two per team namespace (exact names, a few
 * globs, a few claim conditions), and the two rules the bench identities match last, so a linear scan pays for
 * every rule before it.
 */
function thousandRules(): RuleConfig[] {
  const rules: RuleConfig[] = [];
  for (let i = 0; rules.length < 998; i++) {
    const team = `team-${String(i).padStart(3, '0')}`;
    if (i % 10 === 9) {
      rules.push({ name: `${team}-envs`, match: { namespaces: [`${team}-*`], serviceAccounts: ['argo-*'] }, policies: [`${team}-read`] } as RuleConfig);
    } else if (i % 25 === 0) {
      rules.push({
        name: `${team}-deployer`,
        match: { issuers: [ISSUER_NAME], namespaces: [team], claims: { '/kubernetes.io/serviceaccount/name': 'deployer' } },
        policies: [`${team}-deploy`],
      } as RuleConfig);
    } else {
      rules.push({
        name: team,
        match: { issuers: [ISSUER_NAME], namespaces: [team], serviceAccounts: ['argo-runner', 'deployer'] },
        policies: [`${team}-read`, `${team}-write`],
        ttlSeconds: 900,
      } as RuleConfig);
    }
  }
  return [...rules, ...defaultRules()];
}

interface BenchFiles {
  readonly dir: string;
  readonly keysDir: string;
}

/** A keys directory with one ES256 key whose pre-publish window is long past, so it signs at once. */
function writeKeys(): BenchFiles {
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-'));
  const keysDir = join(dir, 'keys');
  mkdirSync(keysDir);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(keysDir, 'bench.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(keysDir, 'bench.json'), JSON.stringify({ notBefore: new Date(Date.now() - 3_600_000).toISOString() }));
  return { dir, keysDir };
}

function writeConfig(
  files: BenchFiles,
  issuerUrl: string,
  options: { readonly rules: RuleConfig[]; readonly redisUrl?: string | undefined; readonly maxEntries?: number; readonly kubeconfig?: string | undefined },
): string {
  const config: BrokerConfigInput = {
    server: { port: 8080, host: '127.0.0.1', publicUrl: 'https://token-broker.bench' },
    issuers: [{ name: ISSUER_NAME, issuer: issuerUrl, audiences: [AUDIENCE], kind: 'kubernetes', clockSkewSeconds: 30 }],
    signing: { algorithm: 'ES256', keysDir: files.keysDir },
    tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
    rules: options.rules,
    cache: {
      refreshBeforeSeconds: 60,
      memory: { maxEntries: options.maxEntries ?? 10_000 },
      ...(options.redisUrl !== undefined && { redis: { url: options.redisUrl } }),
    },
    // The bench presents thousands of identities a second; the per-workload mint limit would answer 429.
    limits: { minting: { enabled: false } },
    logging: { level: 'info' },
    // The production defaults for lookups: namespaces and service accounts cached 60 s, pods 10 s by UID.
    ...(options.kubeconfig !== undefined && { kubernetes: { kubeconfig: options.kubeconfig, podBinding: 'enforce' } }),
  } as BrokerConfigInput;
  const path = join(files.dir, `broker-${randomUUID().slice(0, 8)}.yaml`);
  // JSON is YAML: the loader reads it through the same parser as any configuration file.
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

// --- child processes ------------------------------------------------------------------------------------------

/** Compiles the files reachable from `entry` (under `root`) with the project's compiler settings into `outDir`. */
function compile(name: string, root: string, entry: string, outDir: string): void {
  mkdirSync(BUILD, { recursive: true });
  const tsconfig = join(BUILD, `tsconfig-${name}.json`);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { noEmit: false, outDir, rootDir: root, sourceMap: false, declaration: false },
      include: [],
      files: [join(root, entry)],
    }),
  );
  rmSync(outDir, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  const emitted = join(outDir, entry.replace(/\.ts$/, '.js'));
  if (tsc.status !== 0) {
    // tsc still emits on type errors; a tree another change has left mid-edit can be measured, but say so.
    if (!existsSync(emitted)) throw new Error(`tsc failed for ${name}:\n${tsc.stdout}${tsc.stderr}`);
    log(`WARNING: tsc reported errors in ${name} (emitted anyway):\n${tsc.stdout.slice(0, 2000)}`);
  }
  // Outside a package scope (node_modules stops the lookup), .js would load as CommonJS.
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
}

/** The baseline app from this tree, and every variant's broker. */
function buildForBench(): void {
  compile('baseline', ROOT, 'bench/baseline-app.ts', BASELINE_BUILT);
  compile('floor', ROOT, 'bench/floor-app.ts', FLOOR_BUILT);
  compile('open-loop-client', ROOT, 'bench/open-loop-client.ts', OPEN_LOOP_BUILT);
  for (const variant of OPTIONS.variants) compile(variant.name, variant.root, 'src/main.ts', dirname(dirname(variant.main)));
}

interface Child {
  readonly process: ChildProcess;
  readonly port: number;
  readonly url: string;
  stderrTail(): string;
}

/**
 * NODE_OPTIONS of the broker container in deploy/kubernetes/base/deployment.yaml (its heap and V8 flags), so the
 * brokers here run as deployed. Each variant reads its own tree's; the baseline, floor and clients get this tree's.
 */
function deploymentNodeOptions(root: string = ROOT): string {
  try {
    const text = readFileSync(join(root, 'deploy', 'kubernetes', 'base', 'deployment.yaml'), 'utf8');
    return /name: NODE_OPTIONS\s*\n\s*value:\s*"?([^"\n]+)"?/.exec(text)?.[1]?.trim() ?? '';
  } catch {
    return '';
  }
}

/** `--node-options` replaces them, to measure another heap setting (say what you ran with the figures). */
const NODE_OPTIONS = args['node-options'] ?? deploymentNodeOptions();

/** Every child process this bench started and has not seen exit: stopped by pid if the bench is interrupted. */
const liveChildren = new Set<ChildProcess>();
/** The redis-server this run started, likewise. */
let liveRedis: RedisServer | undefined;

function spawnNode(
  args: readonly string[],
  env: Record<string, string>,
  stdout: 'ignore' | 'pipe' = 'ignore',
  pinTo: number | undefined = undefined,
): { child: ChildProcess; tail: () => string } {
  // taskset execs node in its own process, so the child's pid is node's (its /proc CPU figures are the server's).
  const [command, commandArgs] = pinTo === undefined ? [process.execPath, [...args]] : ['taskset', ['-c', String(pinTo), process.execPath, ...args]];
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS, ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  });
  return { child, tail: () => tail };
}

async function waitReady(child: ChildProcess, url: string, path: string, ready: (status: number, body: string) => boolean, tail: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let i = 0; Date.now() < deadline && i < 3000; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`child exited during start-up:\n${tail()}`);
    try {
      const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(1000) });
      if (ready(response.status, await response.text())) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`child not ready at ${url}${path} within 30 s:\n${tail()}`);
}

async function startBroker(
  variant: Variant,
  configPath: string,
  options: { readonly redis: boolean; readonly profileName?: string | undefined },
): Promise<Child> {
  const port = await freePort();
  const profile = options.profileName === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', RESULTS, '--cpu-prof-name', `${options.profileName}.cpuprofile`];
  const { child, tail } = spawnNode([...profile, variant.main, 'serve', '--config', configPath], { PORT: String(port), NODE_OPTIONS: variant.nodeOptions }, 'ignore', OPTIONS.pinServer);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, url, '/readyz', (status, body) => status === 200 && (!options.redis || body.includes('"detail":"up"')), tail);
  return { process: child, port, url, stderrTail: tail };
}

async function startBaseline(): Promise<Child> {
  const port = await freePort();
  const { child, tail } = spawnNode([join(BASELINE_BUILT, 'bench', 'baseline-app.js'), String(port)], {}, 'ignore', OPTIONS.pinServer);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, url, '/healthz-none', (status) => status === 404, tail);
  return { process: child, port, url, stderrTail: tail };
}

/** The miss floor (bench/floor-app.ts): verifies with the stand-in issuer's JWKS, signs with the bench's ES256 key. */
async function startFloor(env: Environment, logLines: boolean): Promise<Child> {
  const port = await freePort();
  const { child, tail } = spawnNode([join(FLOOR_BUILT, 'bench', 'floor-app.js'), String(port), env.issuer.jwksUri, join(env.files.keysDir, 'bench.pem')], {
    FLOOR_LOG_LINES: logLines ? '1' : '0',
  }, 'ignore', OPTIONS.pinServer);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, url, '/token', (status) => status === 400, tail);
  return { process: child, port, url, stderrTail: tail };
}

/** SIGTERM, then SIGKILL after 10 s: only ever the child this bench started, by its own handle. */
async function stopChild(child: Child): Promise<void> {
  const proc = child.process;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((done) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
    }, 10_000);
    proc.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    proc.kill('SIGTERM');
  });
}

async function scrapeCacheResults(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const out: Record<string, number> = {};
  for (const name of ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes']) {
    const value = new RegExp(`^token_broker_${name} (\\S+)`, 'm').exec(text)?.[1];
    if (value !== undefined) out[`${name.replace('nodejs_', '').replace('_bytes', '')}_mb`] = round(Number(value) / 1048576, 1);
  }
  for (const match of text.matchAll(/^token_broker_cache_requests_total\{result="(\w+)"\} (\d+)/gm)) out[match[1] ?? '?'] = Number(match[2]);
  // Kubernetes API requests by resource: how many exchanges paid a lookup (kubernetes scenarios only).
  for (const match of text.matchAll(/^token_broker_kubernetes_requests_total\{[^}]*resource="(\w+)"[^}]*\} (\d+)/gm)) {
    const key = `k8s:${match[1] ?? '?'}`;
    out[key] = (out[key] ?? 0) + Number(match[2]);
  }
  for (const match of text.matchAll(/^token_broker_exchanges_total\{outcome="(\w+)",reason="(\w+)"\} (\d+)/gm)) {
    out[`${match[1]}:${match[2]}`] = Number(match[3]);
  }
  return out;
}

// --- load -----------------------------------------------------------------------------------------------------

interface LoadSpec {
  readonly targets: readonly string[];
  readonly connections: number;
  readonly durationSeconds: number;
  /** Upper bound on requests (a pool that must not repeat); undefined: the duration alone. */
  readonly maxRequests?: number | undefined;
  /** Requests per second across all targets; undefined: as fast as the server answers. */
  readonly rate?: number | undefined;
  readonly nextBody: () => string;
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statuses: Record<string, number>;
  readonly socketErrors: number;
}

/** One autocannon instance per target (connections split evenly), latencies recorded per response. */
async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let socketErrors = 0;
  let firstAt = 0;
  let lastAt = 0;
  const perTarget = Math.max(1, Math.floor(spec.connections / spec.targets.length));
  const started = performance.now();
  const instances: Instance[] = [];
  const finished = spec.targets.map(
    (url) =>
      new Promise<void>((done, fail) => {
        const instance = autocannon(
          {
            url,
            connections: perTarget,
            pipelining: 1,
            duration: spec.durationSeconds,
            timeout: 10,
            ...(spec.maxRequests !== undefined && { maxOverallRequests: Math.floor(spec.maxRequests / spec.targets.length) }),
            ...(spec.rate !== undefined && { overallRate: Math.max(1, Math.round(spec.rate / spec.targets.length)) }),
            requests: [
              {
                method: 'POST',
                path: '/token',
                headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
                setupRequest: (request) => {
                  request.body = spec.nextBody();
                  return request;
                },
              },
            ],
          },
          (error) => (error ? fail(error) : done()),
        );
        instance.on('response', (_client, statusCode, _bytes, responseTime) => {
          statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
          latencies.push(responseTime);
          lastAt = performance.now();
          if (firstAt === 0) firstAt = lastAt - responseTime;
        });
        instance.on('reqError', () => {
          socketErrors++;
        });
        instances.push(instance);
      }),
  );
  // A hard stop in case an instance never reports done: every loop is bounded in time.
  const guard = setTimeout(() => instances.forEach((i) => i.stop()), (spec.durationSeconds + 30) * 1000);
  await Promise.all(finished);
  clearTimeout(guard);
  // The rate over the span requests were answered: autocannon reports `done` on its next 1 s tick, so the time to
  // `done` would understate a run that ends early (a miss pool used up).
  const seconds = firstAt === 0 ? (performance.now() - started) / 1000 : (lastAt - firstAt) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    seconds: round(seconds),
    rps: round(latencies.length / Math.max(seconds, 0.001), 0),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    statuses,
    socketErrors,
  };
}

/**
 * Open-loop load: requests start at Poisson-distributed times, `rate` a second, whatever the answers do, each on a
 * free keep-alive socket. Latency runs from the scheduled start, so a stall counts for every request it delays (no
 * coordinated omission). Used for latency at a given rate: autocannon's fixed-rate mode starts all its connections
 * on the same beat, a burst of `connections` requests every 1/rate-per-connection seconds, which measures the
 * drain time of a herd rather than what independent clients see. The client is a process of its own
 * (bench/open-loop-client.ts), so this process's large heap (the signed token pools) and its pauses stay out of the
 * figures. Bounded by `durationSeconds` and 1.5 x rate x duration requests.
 */
async function runOpenLoop(url: string, rate: number, durationSeconds: number, body: string): Promise<LoadResult> {
  const bodyFile = join(mkdtempSync(join(tmpdir(), 'tb-bench-body-')), 'body');
  writeFileSync(bodyFile, body);
  try {
    const { child, tail } = spawnNode([OPEN_LOOP_CLIENT, `${url}/token`, String(rate), String(durationSeconds), bodyFile], {}, 'pipe');
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    if (exitCode !== 0) throw new Error(`open-loop client exited ${exitCode}:\n${tail()}`);
    const result = JSON.parse(stdout.trim()) as Omit<LoadResult, 'rps'> & { seconds: number };
    return {
      ...result,
      seconds: round(result.seconds),
      rps: round(result.requests / durationSeconds, 0),
      p50Ms: round(result.p50Ms),
      p99Ms: round(result.p99Ms),
    };
  } finally {
    rmSync(dirname(bodyFile), { recursive: true, force: true });
  }
}

/** A body source per traffic kind; `miss` and the miss share of `mixed` never repeat a token within a run. */
function bodies(traffic: Traffic | 'warm', pools: Pools): { next: () => string; maxRequests: number | undefined } {
  let i = 0;
  let m = 0;
  let e = 0;
  switch (traffic) {
    case 'hit':
      return { next: () => pools.hit, maxRequests: undefined };
    case 'miss':
      return { next: () => pools.miss[m++ % pools.miss.length] as string, maxRequests: pools.miss.length };
    case 'miss-pod-reused':
      return { next: () => pools.podReused[m++ % pools.podReused.length] as string, maxRequests: pools.podReused.length };
    case 'mixed':
      return { next: () => (i++ % 10 === 9 ? (pools.miss[m++ % pools.miss.length] as string) : pools.hit), maxRequests: pools.miss.length * 10 };
    case 'reject':
      return { next: () => pools.expired[e++ % pools.expired.length] as string, maxRequests: undefined };
    case 'warm':
      // Every path the scenarios take, so the broker is JIT-warm for each: 80% hit, 10% miss, 10% expired.
      return {
        next: () => {
          const k = i++ % 10;
          if (k === 8) return pools.warm[m++ % pools.warm.length] as string;
          if (k === 9) return pools.expired[e++ % pools.expired.length] as string;
          return pools.hit;
        },
        maxRequests: undefined,
      };
  }
}

// --- the runs -------------------------------------------------------------------------------------------------

export interface RunRecord extends LoadResult {
  readonly errors: number;
  readonly rssMb: number | undefined;
  /** CPU time of the broker process(es) per request served (user + system), every thread. */
  readonly cpuUsPerRequest: number | undefined;
  /** The part of it spent on the main threads (the event loop); the rest is GC helper and thread-pool threads. */
  readonly mainThreadCpuUsPerRequest: number | undefined;
  readonly load1Before: number;
  readonly load1After: number;
  readonly brokerCounters?: Record<string, number>;
  readonly warmUpRequests?: number;
}

function unexpected(result: LoadResult, expectStatus: number): number {
  let count = result.socketErrors;
  for (const [status, n] of Object.entries(result.statuses)) if (Number(status) !== expectStatus) count += n;
  return count;
}

interface Environment {
  readonly issuer: StandInIssuer;
  readonly files: BenchFiles;
  readonly pools: Pools;
  readonly redis: RedisServer | undefined;
  /** The stand-in Kubernetes API's kubeconfig, when a kubernetes scenario is selected. */
  readonly kubeconfig: string | undefined;
}

async function flushRedis(redis: RedisServer): Promise<void> {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    await client.flushall();
  } finally {
    client.disconnect();
  }
}

/** Returns how many requests the warm-up made (a CPU profile covers them too). */
async function warmUp(targets: readonly string[], pools: Pools): Promise<number> {
  const warm = bodies('warm', pools);
  const result = await runLoad({ targets, connections: Math.min(OPTIONS.connections, 16), durationSeconds: WARM_UP_SECONDS, nextBody: warm.next });
  return result.requests;
}

async function runScenarioOnce(env: Environment, variant: Variant, scenario: Scenario, profileName?: string): Promise<RunRecord> {
  if (scenario.cache === 'redis' && env.redis !== undefined) await flushRedis(env.redis);
  const configPath = writeConfig(env.files, env.issuer.issuer, {
    rules: scenario.ruleCount === 1000 ? thousandRules() : defaultRules(),
    redisUrl: scenario.cache === 'redis' ? env.redis?.url : undefined,
    kubeconfig: scenario.kubernetes === true ? env.kubeconfig : undefined,
  });
  const brokers: Child[] = [];
  try {
    for (let r = 0; r < scenario.replicas; r++) {
      brokers.push(await startBroker(variant, configPath, { redis: scenario.cache === 'redis', profileName }));
    }
    const targets = brokers.map((b) => b.url);
    const warmUpRequests = await warmUp(targets, env.pools);
    const source = bodies(scenario.traffic, env.pools);
    const load1Before = load1();
    const result = await cpuPerRequest(
      brokers.map((b) => b.process.pid),
      () =>
        runLoad({
          targets,
          connections: OPTIONS.connections,
          durationSeconds: OPTIONS.durationSeconds,
          maxRequests: source.maxRequests,
          nextBody: source.next,
        }),
    );
    const rss = brokers.map((b) => rssMb(b.process.pid)).filter((v): v is number => v !== undefined);
    const counters = brokers.length === 1 && brokers[0] !== undefined ? await scrapeCacheResults(brokers[0].url) : undefined;
    return {
      ...result,
      errors: unexpected(result, scenario.expectStatus),
      rssMb: rss.length === 0 ? undefined : Math.max(...rss),
      load1Before,
      load1After: load1(),
      warmUpRequests,
      ...(counters !== undefined && { brokerCounters: counters }),
    };
  } finally {
    for (const broker of brokers) await stopChild(broker);
    rmSync(configPath, { force: true });
  }
}

async function runBaselineOnce(pools: Pools): Promise<RunRecord> {
  const baseline = await startBaseline();
  try {
    await warmUp([baseline.url], pools);
    const load1Before = load1();
    const result = await cpuPerRequest([baseline.process.pid], () =>
      runLoad({ targets: [baseline.url], connections: OPTIONS.connections, durationSeconds: OPTIONS.durationSeconds, nextBody: () => pools.hit }),
    );
    return { ...result, errors: unexpected(result, 200), rssMb: rssMb(baseline.process.pid), load1Before, load1After: load1() };
  } finally {
    await stopChild(baseline);
  }
}

/**
 * The floor under miss traffic: every request a fresh subject token, verified and answered with a new signature;
 * with `logLines`, also the exchange and audit lines the broker writes for each issued token (`floor+log`).
 */
async function runFloorOnce(env: Environment, logLines: boolean): Promise<RunRecord> {
  const floor = await startFloor(env, logLines);
  try {
    await warmUp([floor.url], env.pools);
    const source = bodies('miss', env.pools);
    const load1Before = load1();
    const result = await cpuPerRequest([floor.process.pid], () =>
      runLoad({ targets: [floor.url], connections: OPTIONS.connections, durationSeconds: OPTIONS.durationSeconds, maxRequests: source.maxRequests, nextBody: source.next }),
    );
    return { ...result, errors: unexpected(result, 200), rssMb: rssMb(floor.process.pid), load1Before, load1After: load1() };
  } finally {
    await stopChild(floor);
  }
}

interface Summary {
  readonly rps: number;
  readonly cpuUsPerRequest: number | undefined;
  readonly mainThreadCpuUsPerRequest: number | undefined;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly rssMb: number | undefined;
  readonly load1: number;
}

/** Median of each figure over the runs (errors: the sum, since the target is none in any run). */
function summarize(runs: readonly RunRecord[]): Summary {
  const rss = runs.map((r) => r.rssMb).filter((v): v is number => v !== undefined);
  const cpu = runs.map((r) => r.cpuUsPerRequest).filter((v): v is number => v !== undefined);
  const mainCpu = runs.map((r) => r.mainThreadCpuUsPerRequest).filter((v): v is number => v !== undefined);
  return {
    rps: median(runs.map((r) => r.rps)),
    cpuUsPerRequest: cpu.length === 0 ? undefined : Math.round(median(cpu)),
    mainThreadCpuUsPerRequest: mainCpu.length === 0 ? undefined : Math.round(median(mainCpu)),
    p50Ms: round(median(runs.map((r) => r.p50Ms))),
    p99Ms: round(median(runs.map((r) => r.p99Ms))),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    rssMb: rss.length === 0 ? undefined : round(median(rss), 1),
    load1: round(median(runs.map((r) => (r.load1Before + r.load1After) / 2))),
  };
}

/**
 * Hit traffic at half the measured maximum rate on one warmed broker, open loop (Poisson arrivals): the latency a
 * fleet sized with 50% headroom shows its clients.
 */
async function runLatencyAtHalfRate(env: Environment, variant: Variant, maxRps: number): Promise<LatencyCheck> {
  const rate = Math.max(100, Math.round(maxRps / 2));
  const configPath = writeConfig(env.files, env.issuer.issuer, { rules: defaultRules() });
  const broker = await startBroker(variant, configPath, { redis: false });
  const runs: RunRecord[] = [];
  let herdP99Ms: number | undefined;
  try {
    await warmUp([broker.url], env.pools);
    for (let run = 0; run < OPTIONS.runs; run++) {
      const load1Before = load1();
      const result = await cpuPerRequest([broker.process.pid], () => runOpenLoop(broker.url, rate, OPTIONS.durationSeconds, env.pools.hit));
      runs.push({ ...result, errors: unexpected(result, 200), rssMb: rssMb(broker.process.pid), load1Before, load1After: load1() });
      log(`${variant.name} latency@${rate}/s (open loop) run ${run + 1}: ${result.rps} req/s p50 ${result.p50Ms} ms p99 ${result.p99Ms} ms ${result.cpuUsPerRequest} CPU us/req (load ${load1Before})`);
    }
    // For comparison, once: autocannon at the same rate, its connections firing in step (the herd the comment above describes).
    const herd = await runLoad({ targets: [broker.url], connections: OPTIONS.connections, durationSeconds: OPTIONS.durationSeconds, rate, nextBody: () => env.pools.hit });
    herdP99Ms = herd.p99Ms;
    log(`${variant.name} latency@${rate}/s (autocannon, ${OPTIONS.connections} connections in step): p50 ${herd.p50Ms} ms p99 ${herd.p99Ms} ms`);
  } finally {
    await stopChild(broker);
    rmSync(configPath, { force: true });
  }
  // The floor of this machine and client at the same rate: the baseline app, same open-loop client, same body.
  const baselineRuns: LoadResult[] = [];
  const baseline = await startBaseline();
  try {
    await runLoad({ targets: [baseline.url], connections: OPTIONS.connections, durationSeconds: WARM_UP_SECONDS, nextBody: () => env.pools.hit });
    for (let run = 0; run < OPTIONS.runs; run++) {
      const result = await runOpenLoop(baseline.url, rate, OPTIONS.durationSeconds, env.pools.hit);
      baselineRuns.push(result);
      log(`baseline latency@${rate}/s (open loop) run ${run + 1}: p50 ${result.p50Ms} ms p99 ${result.p99Ms} ms`);
    }
  } finally {
    await stopChild(baseline);
  }
  return {
    variant: variant.name,
    rate,
    runs,
    summary: summarize(runs),
    autocannonInStepP99Ms: herdP99Ms,
    baselineP50Ms: round(median(baselineRuns.map((r) => r.p50Ms))),
    baselineP99Ms: round(median(baselineRuns.map((r) => r.p99Ms))),
  };
}

interface LatencyCheck {
  readonly variant: string;
  readonly rate: number;
  /** p99 of one autocannon run at the same rate, connections in step: a burst pattern, for comparison. */
  readonly autocannonInStepP99Ms: number | undefined;
  /** The baseline app at the same rate with the same client (median of the runs): what this machine allows. */
  readonly baselineP50Ms: number;
  readonly baselineP99Ms: number;
  readonly runs: readonly RunRecord[];
  readonly summary: Summary;
}

interface MemoryCheck {
  readonly variant: string;
  readonly identities: number;
  readonly heap?: Record<string, number>;
  readonly maxEntries: number;
  readonly seconds: number;
  readonly rpsDuring: number;
  readonly errors: number;
  /** 3 s after the last answer: the live heap plus whatever garbage and heap headroom the burst left. */
  readonly rssMbAfter: number | undefined;
  /**
   * After SETTLE_SECONDS of idle: V8's memory reducer has run a full collection (it starts a few seconds after the
   * allocation rate drops) and released what it does not need. What the bounded caches really hold.
   */
  readonly rssMbSettled: number | undefined;
  readonly rssMbPeak: number | undefined;
  readonly rssMbIdleBefore: number | undefined;
}

/**
 * RSS of one broker after `all.length` distinct exchanges (every one a miss and a mint), with the in-memory cache
 * bounded at `maxEntries`: the default 10,000 (memory must stay bounded however many identities pass), or sized to
 * hold every identity (what an operator who raises the bound should budget per entry).
 */
async function runMemoryCheck(env: Environment, variant: Variant, all: readonly string[], maxEntries: number): Promise<MemoryCheck> {
  const configPath = writeConfig(env.files, env.issuer.issuer, { rules: defaultRules(), maxEntries });
  const broker = await startBroker(variant, configPath, { redis: false });
  try {
    const idle = rssMb(broker.process.pid);
    let i = 0;
    const result = await runLoad({
      targets: [broker.url],
      connections: OPTIONS.connections,
      durationSeconds: 600,
      maxRequests: all.length,
      nextBody: () => all[i++ % all.length] as string,
    });
    await sleep(3000);
    const rssMbAfter = rssMb(broker.process.pid);
    await sleep(SETTLE_SECONDS * 1000 - 3000);
    const rssMbSettled = rssMb(broker.process.pid);
    const counters = await scrapeCacheResults(broker.url);
    log(`${variant.name} memory (maxEntries ${maxEntries}): ${result.requests} exchanges in ${result.seconds} s, RSS ${rssMbAfter} MB after 3 s, ${rssMbSettled} MB after ${SETTLE_SECONDS} s, ${JSON.stringify(counters)}`);
    const heap = Object.fromEntries(Object.entries(counters).filter(([k]) => k.endsWith('_mb')));
    return {
      variant: variant.name,
      identities: result.requests,
      heap,
      maxEntries,
      seconds: result.seconds,
      rpsDuring: result.rps,
      errors: unexpected(result, 200),
      rssMbAfter,
      rssMbSettled,
      rssMbPeak: rssMb(broker.process.pid, 'VmHWM'),
      rssMbIdleBefore: idle,
    };
  } finally {
    await stopChild(broker);
    rmSync(configPath, { force: true });
  }
}

interface RedisFootprint {
  readonly tokenKeys: number;
  readonly sampled: number;
  readonly memoryUsageBytesMean: number;
  readonly memoryUsageBytesMax: number;
  readonly usedMemoryBytesPerKey: number;
}

/** After a Redis miss run: MEMORY USAGE of sampled token keys, and used_memory per key as a cross-check. */
async function measureRedisFootprint(redis: RedisServer, emptyUsedMemory: number): Promise<RedisFootprint> {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const keys: string[] = [];
    let cursor = '0';
    for (let i = 0; i < 1000 && keys.length < 500; i++) {
      const [next, batch] = await client.scan(cursor, 'MATCH', 'tb:t:*', 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
    const sizes: number[] = [];
    for (const key of keys.slice(0, 500)) {
      const bytes = (await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
      if (typeof bytes === 'number') sizes.push(bytes);
    }
    const tokenKeys = (await client.keys('tb:t:*')).length;
    const info = await client.info('memory');
    const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    const dbsize = await client.dbsize();
    return {
      tokenKeys,
      sampled: sizes.length,
      memoryUsageBytesMean: round(sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length), 0),
      memoryUsageBytesMax: Math.max(0, ...sizes),
      usedMemoryBytesPerKey: round((used - emptyUsedMemory) / Math.max(1, dbsize), 0),
    };
  } finally {
    client.disconnect();
  }
}

async function redisUsedMemory(redis: RedisServer): Promise<number> {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    await client.flushall();
    return Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1] ?? 0);
  } finally {
    client.disconnect();
  }
}

// --- report ---------------------------------------------------------------------------------------------------

interface ScenarioReport {
  readonly variant: string;
  readonly id: string;
  readonly what: string;
  readonly runs: readonly RunRecord[];
  readonly median: Summary;
  readonly ratioToBaseline: number;
}

interface Target {
  readonly name: string;
  readonly target: string;
  readonly value: number | string | undefined;
  readonly met: boolean | undefined;
  /** A figure shown beside the targets to read them by, not a target itself. */
  readonly context?: boolean;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows
    .map((r, i) => {
      const line = `| ${r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(' | ')} |`;
      return i === 0 ? `${line}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|` : line;
    })
    .join('\n');
}

/** The targets of the brief, judged on one variant's medians. */
function evaluateTargets(
  variant: string,
  baseline: Summary | undefined,
  allReports: readonly ScenarioReport[],
  latency: LatencyCheck | undefined,
  memory: MemoryCheck | undefined,
  footprint: RedisFootprint | undefined,
  floor?: Summary,
  floorLogged?: Summary,
): Target[] {
  const reports = allReports.filter((r) => r.variant === variant);
  const get = (id: string) => reports.find((r) => r.id === id);
  const ratio = (id: string) => get(id)?.ratioToBaseline;
  const targets: Target[] = [];
  const at = (name: string, target: string, value: number | undefined, ok: (v: number) => boolean) =>
    targets.push({ name, target, value, met: value === undefined ? undefined : ok(value) });
  if (baseline !== undefined) {
    at('hit / baseline', '>= 0.85', ratio('memory/hit'), (v) => v >= 0.85);
    at('miss / baseline', '>= 0.45', ratio('memory/miss'), (v) => v >= 0.45);
    at('reject / baseline', '>= 0.85', ratio('memory/reject'), (v) => v >= 0.85);
  }
  // Issue 18: what a miss costs beyond its two signatures, as CPU per request over the floor server's.
  if (floor?.cpuUsPerRequest !== undefined) {
    const overFloor = (id: string) => {
      const cpu = get(id)?.median.cpuUsPerRequest;
      return cpu === undefined || floor.cpuUsPerRequest === undefined ? undefined : round(cpu / floor.cpuUsPerRequest);
    };
    at('miss CPU / floor CPU', '<= 1.6', overFloor('memory/miss'), (v) => v <= 1.6);
    at('redis/miss CPU / floor CPU', '<= 2.2', overFloor('redis/miss'), (v) => v <= 2.2);
    at('kubernetes/miss CPU / floor CPU (pod lookup cached)', '<= 2.0', overFloor('kubernetes/miss-pod-reused'), (v) => v <= 2.0);
    // Not a target: every exchange a new pod, so every exchange pays an uncached pod GET.
    targets.push({ name: '  for context: kubernetes/miss, a new pod per exchange (pod GET uncached) / floor', target: '-', value: overFloor('kubernetes/miss'), met: undefined, context: true });
    // Not a target: how much of the budget over the floor the two lines every issued token owes take by themselves.
    const logged = floorLogged?.cpuUsPerRequest;
    targets.push({ name: '  for context: floor+log (the two log lines of an issued token) / floor', target: '-', value: logged === undefined ? undefined : round(logged / floor.cpuUsPerRequest), met: undefined, context: true });
  }
  const hit = get('memory/hit')?.median.rps;
  const rules = get('memory/rules-1000')?.median.rps;
  at('rules-1000 / hit', '>= 0.95', hit !== undefined && rules !== undefined ? round(rules / hit) : undefined, (v) => v >= 0.95);
  at('hit p99 at 50% of max rate (ms)', '<= 10', latency?.summary.p99Ms, (v) => v <= 10);
  // Not a target: the same client against the baseline app at the same rate, to tell the broker from the machine.
  if (latency !== undefined) {
    targets.push({ name: '  for context: the baseline app at the same rate, same client, p99 (ms)', target: '-', value: latency.baselineP99Ms, met: undefined, context: true });
  }
  const errors = reports.reduce((sum, r) => sum + r.median.errors, 0) + (latency?.summary.errors ?? 0) + (memory?.errors ?? 0);
  at('errors (all runs)', '= 0', errors, (v) => v === 0);
  at(`RSS after ${memory?.identities ?? '?'} identities, in-memory cache, default bound, settled (MB)`, '<= 150', memory?.rssMbSettled, (v) => v <= 150);
  if (memory !== undefined) {
    targets.push({ name: '  for context: the same, 3 s after the burst / peak (MB)', target: '-', value: `${memory.rssMbAfter} / ${memory.rssMbPeak}`, met: undefined, context: true });
  }
  at('Redis MEMORY USAGE per cached token (bytes)', '<= 1536', footprint?.memoryUsageBytesMean, (v) => v <= 1536);
  return targets;
}

// --- main -----------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  const startedAt = new Date();
  const { variants } = OPTIONS;
  const multi = variants.length > 1;
  log(`options ${JSON.stringify({ ...OPTIONS, only: OPTIONS.only && [...OPTIONS.only] })}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  log(`compiling the baseline and ${variants.map((v) => v.name).join(', ')} (tsc)`);
  buildForBench();
  const issuer = await startStandInIssuer({ audience: AUDIENCE });
  const files = writeKeys();
  const redisReason = redisUnavailableReason();
  const wantRedis = SCENARIOS.some((s) => s.cache === 'redis' && selected(s.name, s.id));
  const redis = wantRedis && redisReason === undefined ? await startRedisServer() : undefined;
  liveRedis = redis;
  let kubernetes: StandInKubernetes | undefined;
  if (wantRedis && redis === undefined) log(`Redis scenarios skipped: ${redisReason}`);
  try {
    log('signing subject tokens (RS256, stand-in issuer)');
    const t0 = performance.now();
    const pods: BenchPod[] = [];
    const [hit] = await signPool(issuer, 1, 'hit', 0, pods);
    const pools: Pools = {
      hit: hit as string,
      miss: await signPool(issuer, MISS_POOL, 'miss', 0, pods),
      podReused: selected('miss-pod-reused', 'kubernetes/miss-pod-reused') ? await signPodReusedPool(issuer, MISS_POOL / TOKENS_PER_POD, pods) : [],
      warm: await signPool(issuer, WARM_POOL, 'warm', 0, pods),
      expired: await signPool(issuer, EXPIRED_POOL, 'expired', -7200, pods),
    };
    log(`signed ${1 + MISS_POOL + pools.podReused.length + WARM_POOL + EXPIRED_POOL} tokens in ${round((performance.now() - t0) / 1000, 1)} s`);
    // The stand-in API server runs in this process (its CPU is not the broker's); every pool token's pod exists.
    if (SCENARIOS.some((scenario) => scenario.kubernetes === true && selected(scenario.name, scenario.id))) {
      kubernetes = await startStandInKubernetes();
      for (let i = 0; i < 50; i++) {
        kubernetes.putNamespace(`payments-${i}`);
        kubernetes.putServiceAccount(`payments-${i}`, 'argo-runner');
      }
      for (const pod of pods) kubernetes.putPod(pod.namespace, pod.name, { uid: pod.uid, serviceAccountName: 'argo-runner' });
    }
    const kubeconfig = kubernetes === undefined ? undefined : await kubernetes.writeKubeconfig(files.dir);
    const env: Environment = { issuer, files, pools, redis, kubeconfig };

    let baseline: { runs: RunRecord[]; median: Summary } | undefined;
    if (selected('baseline')) {
      const runs: RunRecord[] = [];
      for (let run = 0; run < OPTIONS.runs; run++) {
        const record = await runBaselineOnce(pools);
        runs.push(record);
        log(`baseline run ${run + 1}: ${record.rps} req/s ${record.cpuUsPerRequest} CPU us/req (main thread ${record.mainThreadCpuUsPerRequest}) p50 ${record.p50Ms} p99 ${record.p99Ms} errors ${record.errors} (load ${record.load1Before})`);
      }
      baseline = { runs, median: summarize(runs) };
    }

    // The miss floor, measured like the baseline (its runs before the scenarios'), with miss traffic; the floor
    // with the two log lines of an issued token in the same rounds, interleaved with it.
    let floor: { runs: RunRecord[]; median: Summary } | undefined;
    let floorLogged: { runs: RunRecord[]; median: Summary } | undefined;
    const floorKinds = [...(selected('floor') ? [false] : []), ...(selected('floor+log') ? [true] : [])];
    if (floorKinds.length > 0) {
      const runs = new Map<boolean, RunRecord[]>(floorKinds.map((kind) => [kind, []]));
      for (let run = 0; run < OPTIONS.runs; run++) {
        for (const logLines of floorKinds) {
          const record = await runFloorOnce(env, logLines);
          runs.get(logLines)?.push(record);
          log(`${logLines ? 'floor+log' : 'floor'} run ${run + 1}: ${record.rps} req/s ${record.cpuUsPerRequest} CPU us/req (main thread ${record.mainThreadCpuUsPerRequest}) p50 ${record.p50Ms} p99 ${record.p99Ms} errors ${record.errors} (load ${record.load1Before})`);
        }
      }
      const plain = runs.get(false);
      const logged = runs.get(true);
      if (plain !== undefined) floor = { runs: plain, median: summarize(plain) };
      if (logged !== undefined) floorLogged = { runs: logged, median: summarize(logged) };
    }

    const reports: ScenarioReport[] = [];
    const footprints: Record<string, RedisFootprint> = {};
    for (const scenario of SCENARIOS) {
      if (!selected(scenario.name, scenario.id)) continue;
      if (scenario.cache === 'redis' && redis === undefined) continue;
      const runs = new Map<string, RunRecord[]>(variants.map((v) => [v.name, []]));
      for (let run = 0; run < OPTIONS.runs; run++) {
        for (const variant of variants) {
          // The footprint is read after the last miss run of each variant, from an emptied Redis.
          const lastMiss = scenario.id === 'redis/miss' && run === OPTIONS.runs - 1 && redis !== undefined;
          const emptyUsed = lastMiss ? await redisUsedMemory(redis) : 0;
          const record = await runScenarioOnce(env, variant, scenario);
          runs.get(variant.name)?.push(record);
          if (lastMiss) footprints[variant.name] = await measureRedisFootprint(redis, emptyUsed);
          log(
            `${multi ? `${variant.name} ` : ''}${scenario.id} run ${run + 1}: ${record.rps} req/s ${record.cpuUsPerRequest} CPU us/req (main thread ${record.mainThreadCpuUsPerRequest}) p50 ${record.p50Ms} p99 ${record.p99Ms} ` +
              `errors ${record.errors} rss ${record.rssMb} MB (load ${record.load1Before}) ${JSON.stringify(record.brokerCounters ?? {})}`,
          );
        }
      }
      for (const variant of variants) {
        const variantRuns = runs.get(variant.name) ?? [];
        const summary = summarize(variantRuns);
        reports.push({
          variant: variant.name,
          id: scenario.id,
          what: scenario.what,
          runs: variantRuns,
          median: summary,
          ratioToBaseline: baseline === undefined ? Number.NaN : round(summary.rps / baseline.median.rps),
        });
      }
    }

    const latency: Record<string, LatencyCheck> = {};
    const memory: Record<string, MemoryCheck> = {};
    const memorySized: Record<string, MemoryCheck> = {};
    const profiles: Record<string, ProfileSummary> = {};
    let memoryPool: string[] | undefined;
    for (const variant of variants) {
      const hitReport = reports.find((r) => r.variant === variant.name && r.id === 'memory/hit');
      if (OPTIONS.latency && hitReport !== undefined) latency[variant.name] = await runLatencyAtHalfRate(env, variant, hitReport.median.rps);
      if (OPTIONS.memory && selected('memory')) {
        if (memoryPool === undefined) {
          log(`memory: signing ${OPTIONS.memoryIdentities - pools.miss.length} more identities`);
          memoryPool = [...pools.miss, ...(await signPool(issuer, OPTIONS.memoryIdentities - pools.miss.length, 'mem'))];
        }
        memory[variant.name] = await runMemoryCheck(env, variant, memoryPool, 10_000);
        memorySized[variant.name] = await runMemoryCheck(env, variant, memoryPool, OPTIONS.memoryIdentities);
      }
      if (OPTIONS.profile) {
        // The kubernetes scenario too when it was run: its lookups are a cost of their own.
        for (const id of ['memory/hit', 'memory/miss', ...(['kubernetes/miss', 'kubernetes/miss-pod-reused'] as const).filter((k) => selected(k.slice('kubernetes/'.length), k))]) {
          const scenario = SCENARIOS.find((s) => s.id === id);
          if (scenario === undefined) continue;
          const name = `${OPTIONS.label ?? 'profile'}-${multi ? `${variant.name}-` : ''}${scenario.kubernetes === true ? 'kubernetes-' : ''}${scenario.name}`;
          const record = await runScenarioOnce(env, variant, scenario, name);
          log(`profiled ${variant.name} ${id}: ${record.rps} req/s (profiling slows the broker)`);
          // The profile spans start-up, warm-up and the run: busy time over every request served.
          profiles[`${variant.name} ${id}`] = summarizeCpuProfile(join(RESULTS, `${name}.cpuprofile`), 25, record.requests + (record.warmUpRequests ?? 0));
        }
      }
    }

    const judged = variants[variants.length - 1]?.name ?? 'current';
    const targets = evaluateTargets(judged, baseline?.median, reports, latency[judged], memory[judged], footprints[judged], floor?.median, floorLogged?.median);
    const report = {
      generatedAt: startedAt.toISOString(),
      label: OPTIONS.label,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, platform: process.platform },
      settings: {
        runs: OPTIONS.runs,
        durationSeconds: OPTIONS.durationSeconds,
        connections: OPTIONS.connections,
        warmUpSeconds: WARM_UP_SECONDS,
        missPool: MISS_POOL,
        nodeOptions: NODE_OPTIONS,
        variants: variants.map((v) => v.name),
        variantNodeOptions: Object.fromEntries(variants.map((v) => [v.name, v.nodeOptions])),
        targetsJudgedOn: judged,
        note: 'median of each figure over the runs; errors summed; load1 = 1-minute load average during the run',
      },
      baseline,
      floor,
      floorLogged,
      scenarios: reports,
      latencyAtHalfRate: latency,
      memory,
      memorySized,
      redisFootprint: footprints,
      profiles,
      targets,
    };
    const text = `${JSON.stringify(report, null, 2)}\n`;
    writeFileSync(join(RESULTS, 'latest.json'), text);
    if (OPTIONS.label !== undefined) writeFileSync(join(RESULTS, `${OPTIONS.label}.json`), text);

    // `CPU x baseline`: the baseline's CPU per request over the scenario's, the ratio contention disturbs least.
    const cpuRatio = (m: Summary) =>
      baseline?.median.cpuUsPerRequest === undefined || m.cpuUsPerRequest === undefined || m.cpuUsPerRequest === 0
        ? '-'
        : (baseline.median.cpuUsPerRequest / m.cpuUsPerRequest).toFixed(2);
    // Every thread's CPU, and in parentheses the main thread's (what a CPU profile sees).
    const cpuCell = (m: Summary) => (m.cpuUsPerRequest === undefined ? '-' : `${m.cpuUsPerRequest} (${m.mainThreadCpuUsPerRequest ?? '-'})`);
    const rows: string[][] = [['scenario', 'req/s', 'x baseline', 'CPU us/req (main)', 'CPU x baseline', 'p50 ms', 'p99 ms', 'errors', 'RSS MB', 'load1', 'runs req/s']];
    if (baseline !== undefined) {
      const b = baseline.median;
      rows.push(['baseline (express)', String(b.rps), '1.00', cpuCell(b), '1.00', String(b.p50Ms), String(b.p99Ms), String(b.errors), String(b.rssMb ?? '-'), String(b.load1), baseline.runs.map((r) => r.rps).join(' ')]);
    }
    if (floor !== undefined) {
      const f = floor.median;
      rows.push(['floor (verify + sign)', String(f.rps), baseline === undefined ? '-' : (f.rps / baseline.median.rps).toFixed(2), cpuCell(f), cpuRatio(f), String(f.p50Ms), String(f.p99Ms), String(f.errors), String(f.rssMb ?? '-'), String(f.load1), floor.runs.map((r) => r.rps).join(' ')]);
    }
    if (floorLogged !== undefined) {
      const f = floorLogged.median;
      rows.push(['floor+log (+ exchange and audit lines)', String(f.rps), baseline === undefined ? '-' : (f.rps / baseline.median.rps).toFixed(2), cpuCell(f), cpuRatio(f), String(f.p50Ms), String(f.p99Ms), String(f.errors), String(f.rssMb ?? '-'), String(f.load1), floorLogged.runs.map((r) => r.rps).join(' ')]);
    }
    for (const r of reports) {
      const m = r.median;
      const name = `${multi ? `${r.variant} ` : ''}${r.id}`;
      rows.push([name, String(m.rps), Number.isNaN(r.ratioToBaseline) ? '-' : r.ratioToBaseline.toFixed(2), cpuCell(m), cpuRatio(m), String(m.p50Ms), String(m.p99Ms), String(m.errors), String(m.rssMb ?? '-'), String(m.load1), r.runs.map((x) => x.rps).join(' ')]);
    }
    for (const l of Object.values(latency)) {
      const m = l.summary;
      rows.push([`${multi ? `${l.variant} ` : ''}memory/hit @ ${l.rate}/s open loop`, String(m.rps), '-', cpuCell(m), '-', String(m.p50Ms), String(m.p99Ms), String(m.errors), String(m.rssMb ?? '-'), String(m.load1), l.runs.map((x) => x.rps).join(' ')]);
    }
    const openLoop = Object.values(latency)[0];
    if (openLoop !== undefined) {
      rows.push([`baseline @ ${openLoop.rate}/s open loop`, '-', '-', '-', '-', String(openLoop.baselineP50Ms), String(openLoop.baselineP99Ms), '-', '-', '-', '-']);
    }
    console.log(`\n${table(rows)}\n`);
    for (const m of [...Object.values(memory), ...Object.values(memorySized)]) {
      console.log(
        `${m.variant} memory: RSS ${m.rssMbSettled} MB settled (${m.rssMbAfter} MB 3 s after the burst) after ${m.identities} identities with cache.memory.maxEntries ${m.maxEntries} ` +
          `(peak ${m.rssMbPeak} MB, idle before ${m.rssMbIdleBefore} MB; ${JSON.stringify(m.heap ?? {})})`,
      );
    }
    for (const [name, f] of Object.entries(footprints)) {
      console.log(`${name} redis: ${f.memoryUsageBytesMean} B MEMORY USAGE per token key (max ${f.memoryUsageBytesMax}, ${f.sampled} sampled of ${f.tokenKeys}); used_memory/key ${f.usedMemoryBytesPerKey} B`);
    }
    console.log(`\ntargets, judged on ${judged}:\n${table([['target', 'wanted', 'measured', 'met'], ...targets.map((t) => [t.name, t.target, String(t.value ?? '-'), t.context === true ? '-' : t.met === undefined ? 'not run' : t.met ? 'yes' : 'NO'])])}\n`);
    for (const [id, summary] of Object.entries(profiles)) {
      console.log(`top self-time frames, ${id} (${summary.busyMs} ms busy${summary.busyUsPerRequest === undefined ? "" : `, ${summary.busyUsPerRequest} us per request served incl. start-up`}):`);
      for (const frame of summary.top.slice(0, 15)) console.log(`  ${frame.selfPercent.toFixed(1).padStart(5)}%  ${frame.name}`);
      console.log(`  by origin: ${summary.byOrigin.slice(0, 8).map((o) => `${o.name} ${o.selfPercent}%`).join(', ')}`);
      console.log(`  broker frames by inclusive time: ${summary.brokerInclusive.slice(0, 15).map((f) => `${f.name} ${f.selfPercent}%`).join(', ')}`);
    }
    log(`wrote bench/results/latest.json${OPTIONS.label !== undefined ? ` and bench/results/${OPTIONS.label}.json` : ''}`);
  } finally {
    await redis?.stop();
    await kubernetes?.close();
    await issuer.close();
    rmSync(files.dir, { recursive: true, force: true });
  }
}

// Ctrl-C or a kill: take down the brokers this run started (their own pids only) before leaving.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    void liveRedis?.stop(); // sends SIGKILL to its redis-server synchronously
    process.exit(130);
  });
}

await main();
