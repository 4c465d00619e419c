import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

/*
 * A real Kubernetes control plane on loopback, the way envtest (controller-runtime) runs one: etcd and
 * kube-apiserver built from their Go modules (scripts/build-kube-binaries.sh), no kubelet, no controller-manager.
 * Certificates are generated per run (openssl for the X.509 ones), the service-account issuer is
 * https://127.0.0.1:PORT, authorization is RBAC, the admin is a static token in group system:masters, and
 * system:service-account-issuer-discovery is bound to unauthenticated users as many clusters do. The broker
 * reaches it only through its production code (a kubeconfig, discovery and JWKS over TLS with caFile).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD_SCRIPT = join(ROOT, 'scripts/build-kube-binaries.sh');
const START_TIMEOUT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 15_000;

function moduleVersion(goMod: string, modulePath: string): string {
  const text = readFileSync(join(ROOT, goMod), 'utf8');
  const match = new RegExp(`^\\s*(?:require\\s+)?${modulePath.replace(/[./]/g, '\\$&')} (v\\S+)`, 'm').exec(text);
  if (match?.[1] === undefined) throw new Error(`${goMod} requires no ${modulePath}`);
  return match[1];
}

/** Where scripts/build-kube-binaries.sh puts the binaries of the pinned versions (TB_KUBE_BIN_DIR overrides). */
export function kubeBinaryDir(): string {
  const override = process.env.TB_KUBE_BIN_DIR;
  if (override !== undefined && override !== '') return override;
  const cache = process.env.TB_KUBE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'workload-token-broker');
  const kubernetes = moduleVersion('test/kube-apiserver/go.mod', 'k8s.io/kubernetes');
  const etcd = moduleVersion('test/etcd/go.mod', 'go.etcd.io/etcd/server/v3');
  return join(cache, `kubernetes-${kubernetes}-etcd-${etcd}`);
}

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** kubectl from PATH, else the one scripts/build-kube-binaries.sh built for a machine without it. */
export function kubectlCommand(): string | undefined {
  if (onPath('kubectl')) return 'kubectl';
  const built = join(kubeBinaryDir(), 'kubectl');
  return existsSync(built) ? built : undefined;
}

/**
 * Why the real-cluster tests cannot run here, or undefined when they can. Outside CI a missing binary (or
 * openssl, or kubectl) skips them with the reason; with CI=true it is a failure: .ci/run builds the binaries.
 */
export function realKubernetesUnavailableReason(): string | undefined {
  const dir = kubeBinaryDir();
  const missing = ['etcd', 'kube-apiserver'].filter((binary) => !existsSync(join(dir, binary)));
  const tools = [...(onPath('openssl') ? [] : ['openssl']), ...(kubectlCommand() === undefined ? ['kubectl'] : [])];
  if (missing.length === 0 && tools.length === 0) return undefined;
  const reason = [
    ...(missing.length > 0 ? [`no ${missing.join(' or ')} in ${dir} (run ${BUILD_SCRIPT}; it needs Go and builds them once)`] : []),
    ...(tools.length > 0 ? [`not on PATH: ${tools.join(', ')}`] : []),
  ].join('; ');
  if (process.env.CI === 'true') throw new Error(`CI=true but the real-cluster tests cannot run: ${reason}. .ci/run must provide them.`);
  return reason;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface PodSpecOptions {
  readonly serviceAccountName: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly finalizers?: readonly string[];
}

export interface CreatedObject {
  readonly name: string;
  readonly uid: string;
}

export interface RealKubernetes {
  /** https://127.0.0.1:PORT: the API server, and the service-account issuer (`iss` of its tokens). */
  readonly server: string;
  readonly issuer: string;
  /** The CA that signed the serving certificate: the broker's issuers[].caFile. */
  readonly caFile: string;
  readonly dir: string;
  /** A kubeconfig for the admin (system:masters), for kubectl. */
  readonly adminKubeconfig: string;
  /** One request as the admin. JSON in and out; merge patches when `method` is PATCH. */
  request(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  /** kubectl with the admin kubeconfig. */
  kubectl(args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }>;
  createNamespace(name: string, labels?: Record<string, string>): Promise<CreatedObject>;
  createServiceAccount(namespace: string, name: string, labels?: Record<string, string>): Promise<CreatedObject>;
  createPod(namespace: string, name: string, options: PodSpecOptions): Promise<CreatedObject>;
  /** A TokenRequest for the service account, bound to the pod when given. */
  requestToken(namespace: string, serviceAccount: string, options: { audience: string; expirationSeconds?: number; pod?: CreatedObject }): Promise<string>;
  /**
   * A kubeconfig for the service account `platform/token-broker` after applying deploy/kubernetes/base's
   * namespace, service account and RBAC exactly as shipped.
   */
  brokerKubeconfig(options?: { serviceAccount?: string }): Promise<string>;
  /**
   * A kubeconfig for a new service account `platform/NAME` bound (ClusterRoleBinding) to a new ClusterRole NAME
   * with exactly `rules`: the broker's credential with other RBAC than the shipped one.
   */
  kubeconfigWithRules(name: string, rules: readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[]): Promise<string>;
  /** Stops kube-apiserver (etcd stays); start() brings it back on the same port. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  close(): Promise<void>;
}

function run(command: string, args: readonly string[], cwd: string): void {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
}

/** CA, serving certificate for 127.0.0.1 and localhost, service-account signing key pair, admin token file. */
function writeCertificates(dir: string, adminToken: string): void {
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=workload-token-broker-test-ca'], dir);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver'], dir);
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n',
  );
  run('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  // token,user,uid,"groups"
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},test-admin,test-admin-uid,"system:masters"\n`, { mode: 0o600 });
}

function kubeconfigText(server: string, caFile: string, user: string, token: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'real', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'real', context: { cluster: 'real', user } }],
    'current-context': 'real',
  });
}

function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Children still running when the test process exits (a failed test, an uncaught error) are killed with it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function spawnLogged(binary: string, args: readonly string[], logFile: string): ChildProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  // Only the tail is kept: it is what explains a failed start.
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => {
    running.delete(child);
    writeFileSync(logFile, log);
  });
  running.add(child);
  Object.defineProperty(child, 'logTail', { get: () => log.slice(-4000) });
  return child;
}

export async function startRealKubernetes(): Promise<RealKubernetes> {
  const binaries = kubeBinaryDir();
  const dir = mkdtempSync(join(tmpdir(), 'tb-real-k8s-'));
  const adminToken = `admin-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  writeCertificates(dir, adminToken);
  const caFile = join(dir, 'ca.crt');
  const ca = readFileSync(caFile);
  const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  writeFileSync(adminKubeconfig, kubeconfigText(server, caFile, 'test-admin', adminToken), { mode: 0o600 });

  const etcd = spawnLogged(
    join(binaries, 'etcd'),
    [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      // A throwaway store: no fsync keeps a slow disk from slowing every write.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    join(dir, 'etcd.log'),
  );

  let apiServer: ChildProcess | undefined;
  const apiServerArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClientPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'certs')}`,
    `--tls-cert-file=${join(dir, 'server.crt')}`,
    `--tls-private-key-file=${join(dir, 'server.key')}`,
    `--client-ca-file=${caFile}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.96.0.0/24',
    '--profiling=false',
    '--v=1',
  ];

  function request(method: string, path: string, body?: unknown, token = adminToken): Promise<ApiAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        `${server}${path}`,
        {
          method,
          ca,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            accept: 'application/json, application/jwk-set+json;q=0.9',
            ...(token !== '' ? { authorization: `Bearer ${token}` } : {}),
            ...(payload !== undefined ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            let parsed: Record<string, unknown> = {};
            try {
              parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
            } catch {
              parsed = { text };
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async function must(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const answer = await request(method, path, body);
    if (answer.status < 200 || answer.status > 299) throw new Error(`${method} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  async function waitReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (apiServer?.exitCode !== null && apiServer?.exitCode !== undefined) break;
      try {
        const answer = await request('GET', '/readyz');
        if (answer.status === 200) return;
        last = `HTTP ${answer.status}`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const tail = (apiServer as (ChildProcess & { logTail?: string }) | undefined)?.logTail ?? '';
    throw new Error(`kube-apiserver not ready within ${START_TIMEOUT_MS} ms (${last}); its log ends:\n${tail}`);
  }

  async function startApiServer(): Promise<void> {
    apiServer = spawnLogged(join(binaries, 'kube-apiserver'), apiServerArgs, join(dir, 'kube-apiserver.log'));
    await waitReady();
  }

  async function kubectl(args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(kubectlCommand() ?? 'kubectl', ['--kubeconfig', adminKubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(input ?? '');
    });
  }

  const created = (body: Record<string, unknown>): CreatedObject => {
    const metadata = body.metadata as { name: string; uid: string };
    return { name: metadata.name, uid: metadata.uid };
  };

  async function requestToken(namespace: string, serviceAccount: string, options: { audience: string; expirationSeconds?: number; pod?: CreatedObject }): Promise<string> {
    const body = await must('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [options.audience],
        expirationSeconds: options.expirationSeconds ?? 600,
        ...(options.pod !== undefined ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: options.pod.name, uid: options.pod.uid } } : {}),
      },
    });
    return String((body.status as { token: string }).token);
  }

  try {
    await startApiServer();
    // As clusters do: anyone may read the issuer's discovery document and keys (kubeadm and most managed clusters
    // bind this for system:serviceaccounts; public issuers for everyone). The broker then needs no token for them.
    await must('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'service-account-issuer-discovery-unauthenticated' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    });
  } catch (error) {
    await stopChild(apiServer);
    await stopChild(etcd);
    throw error;
  }

  let brokerSetup = 0;
  async function brokerKubeconfig(options: { serviceAccount?: string } = {}): Promise<string> {
    brokerSetup += 1;
    const base = join(ROOT, 'deploy/kubernetes/base');
    const applied = await kubectl(['apply', '-f', join(base, 'namespace.yaml'), '-f', join(base, 'serviceaccount.yaml'), '-f', join(base, 'rbac.yaml')]);
    if (applied.code !== 0) throw new Error(`kubectl apply of deploy/kubernetes/base failed: ${applied.stderr}`);
    const serviceAccount = options.serviceAccount ?? 'token-broker';
    if (serviceAccount !== 'token-broker') {
      const exists = await request('GET', `/api/v1/namespaces/platform/serviceaccounts/${serviceAccount}`);
      if (exists.status === 404) await must('POST', '/api/v1/namespaces/platform/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount } });
    }
    // The API server's own audience (its issuer), as the kubelet's projected API token has.
    const token = await requestToken('platform', serviceAccount, { audience: server, expirationSeconds: 3600 });
    const path = join(dir, `broker-${brokerSetup}.kubeconfig`);
    writeFileSync(path, kubeconfigText(server, caFile, `system:serviceaccount:platform:${serviceAccount}`, token), { mode: 0o600 });
    return path;
  }

  return {
    server,
    issuer: server,
    caFile,
    dir,
    adminKubeconfig,
    request: (method, path, body) => request(method, path, body),
    kubectl,
    createNamespace: async (name, labels) => created(await must('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: labels ?? {} } })),
    createServiceAccount: async (namespace, name, labels) =>
      created(await must('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels: labels ?? {} } })),
    createPod: async (namespace, name, options) =>
      created(
        await must('POST', `/api/v1/namespaces/${namespace}/pods`, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace, labels: options.labels ?? {}, annotations: options.annotations ?? {}, ...(options.finalizers !== undefined ? { finalizers: [...options.finalizers] } : {}) },
          // No kubelet: the pod stays Pending, which is all a bound token needs.
          spec: { serviceAccountName: options.serviceAccountName, containers: [{ name: 'main', image: 'registry.invalid/step:1' }] },
        }),
      ),
    requestToken,
    brokerKubeconfig,
    async kubeconfigWithRules(name, rules) {
      await must('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules });
      await must('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace: 'platform' }],
      });
      return brokerKubeconfig({ serviceAccount: name });
    },
    stopApiServer: () => stopChild(apiServer),
    startApiServer,
    async close() {
      await stopChild(apiServer);
      await stopChild(etcd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
