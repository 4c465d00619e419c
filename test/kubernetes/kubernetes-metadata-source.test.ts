import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BrokerError } from '../../src/server/errors.js';
import type { KubernetesMetadataSource } from '../../src/server/identity/kubernetes-metadata.js';
import { loadKubeConfig } from '../../src/server/kubernetes/kube-config.js';
import {
  createKubernetesMetadataSource,
  type KubernetesMetadataSourceOptions,
  type KubernetesResource,
} from '../../src/server/kubernetes/kubernetes-metadata-source.js';
import { startStandInKubernetes, serviceAccountReview, type DownMode, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { useScratchDir } from '../support/scratch-dir.js';

const DESCRIPTION = 'The broker cannot check this workload with the Kubernetes API right now; retry shortly.';
const CACHE_SECONDS = { namespace: 60, serviceAccount: 60, pod: 10 } as const;
const AUDIENCE = 'tyk-token-broker';

interface RecordedRequest {
  readonly resource: KubernetesResource;
  readonly code: string;
}

interface Fixture {
  readonly source: KubernetesMetadataSource;
  readonly clock: TestClock;
  readonly requests: RecordedRequest[];
  readonly seconds: number[];
}

let cluster: StandInKubernetes;
let dir: string;
let kubeconfig: string;
const sources: KubernetesMetadataSource[] = [];

function newSource(overrides: Partial<KubernetesMetadataSourceOptions> = {}): Fixture {
  const clock = createTestClock(Date.parse('2026-01-01T00:00:00Z'));
  const requests: RecordedRequest[] = [];
  const seconds: number[] = [];
  const source = createKubernetesMetadataSource({
    connection: { kubeconfig },
    cacheSeconds: CACHE_SECONDS,
    now: clock.now,
    timeoutMs: 2000,
    events: {
      onRequest(resource, code, elapsed) {
        requests.push({ resource, code });
        seconds.push(elapsed);
      },
    },
    ...overrides,
  });
  sources.push(source);
  return { source, clock, requests, seconds };
}

/** A name no other test uses, so request counts on the shared stand-in are this test's own. */
function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

const podPath = (namespace: string, name: string): string => `/api/v1/namespaces/${namespace}/pods/${name}`;
const namespacePath = (name: string): string => `/api/v1/namespaces/${name}`;
const serviceAccountPath = (namespace: string, name: string): string => `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`;
const TOKEN_REVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';

/** Asserts the promise rejects with 503 kubernetes_unavailable and returns the error. */
/** The BrokerError `promise` rejects with, checked against what callers are told. */
async function rejectsWith(promise: Promise<unknown>, expected: { code: string; status: number; oauthError: string; description: string }): Promise<BrokerError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof BrokerError, `expected a BrokerError, got ${String(thrown)}`);
  assert.deepEqual({ code: thrown.code, status: thrown.status, oauthError: thrown.oauthError, description: thrown.description }, expected);
  return thrown;
}

const rejectsUnavailable = (promise: Promise<unknown>) =>
  rejectsWith(promise, { code: 'kubernetes_unavailable', status: 503, oauthError: 'temporarily_unavailable', description: DESCRIPTION });

const rejectsForbidden = (promise: Promise<unknown>) =>
  rejectsWith(promise, {
    code: 'kubernetes_forbidden',
    status: 500,
    oauthError: 'server_error',
    description: 'The broker is not allowed to check this workload with the Kubernetes API: its own credential or RBAC is misconfigured. Retrying will not help; tell the broker\'s operators.',
  });

before(async () => {
  cluster = await startStandInKubernetes();
  dir = await mkdtemp(join(tmpdir(), 'stand-in-kubernetes-'));
  kubeconfig = await cluster.writeKubeconfig(dir);
});

afterEach(() => {
  cluster.setDown(false);
});

after(async () => {
  for (const source of sources) source.close();
  await cluster.close();
  await rm(dir, { recursive: true, force: true });
});

describe('KubernetesMetadataSource: objects through a real kubeconfig and the real client', () => {
  it('reads a namespace with its labels and annotations; a missing one is undefined (404)', async () => {
    const { source, requests } = newSource();
    const name = unique('team');
    const created = cluster.putNamespace(name, { labels: { 'broker.example/tier': 'gold' }, annotations: { owner: 'payments' } });
    assert.deepEqual(await source.getNamespace(name), {
      name,
      uid: created.metadata.uid,
      labels: { 'kubernetes.io/metadata.name': name, 'broker.example/tier': 'gold' },
      annotations: { owner: 'payments' },
    });
    const missing = unique('absent');
    assert.equal(await source.getNamespace(missing), undefined);
    assert.equal(cluster.requestCount('GET', namespacePath(missing)), 1);
    assert.deepEqual(requests, [
      { resource: 'namespaces', code: '200' },
      { resource: 'namespaces', code: '404' },
    ]);
  });

  it('reads a service account; a missing one is undefined (404)', async () => {
    const { source, requests } = newSource();
    const namespace = unique('ns');
    const created = cluster.putServiceAccount(namespace, 'wf-runner', { labels: { 'broker.example/trusted': 'true' } });
    assert.deepEqual(await source.getServiceAccount(namespace, 'wf-runner'), {
      name: 'wf-runner',
      namespace,
      uid: created.metadata.uid,
      labels: { 'broker.example/trusted': 'true' },
      annotations: {},
    });
    assert.equal(await source.getServiceAccount(namespace, 'nobody'), undefined);
    assert.equal(cluster.requestCount('GET', serviceAccountPath(namespace, 'nobody')), 1);
    assert.deepEqual(requests, [
      { resource: 'serviceaccounts', code: '200' },
      { resource: 'serviceaccounts', code: '404' },
    ]);
  });

  it('reads an Argo pod: labels, annotations, phase; a missing pod is undefined (404)', async () => {
    const { source, requests } = newSource();
    const namespace = unique('ci');
    const pod = cluster.putArgoPod({ namespace, workflow: 'orders-sync-x7k2p', template: 'call-api', labels: { team: 'orders' } });
    const info = await source.getPod(namespace, pod.metadata.name, pod.metadata.uid);
    assert.deepEqual(info, {
      name: pod.metadata.name,
      namespace,
      uid: pod.metadata.uid,
      labels: { team: 'orders', 'workflows.argoproj.io/workflow': 'orders-sync-x7k2p', 'workflows.argoproj.io/completed': 'false' },
      annotations: pod.metadata.annotations,
      phase: 'Running',
    });
    assert.equal(info?.annotations['workflows.argoproj.io/node-name'], 'orders-sync-x7k2p.call-api');
    assert.equal(await source.getPod(namespace, 'gone-pod', randomUUID()), undefined);
    assert.deepEqual(requests, [
      { resource: 'pods', code: '200' },
      { resource: 'pods', code: '404' },
    ]);
  });

  it('reads deletionTimestamp of a terminating pod and the completed label of a finished Argo pod', async () => {
    const { source } = newSource();
    const namespace = unique('ci');
    const terminating = cluster.putPod(namespace, 'step-a', {});
    cluster.markTerminating(namespace, 'step-a', '2026-01-01T00:00:30Z');
    const finished = cluster.putArgoPod({ namespace, workflow: 'wf', name: 'wf-main-1234567890' });
    cluster.markCompleted(namespace, finished.metadata.name);
    const a = await source.getPod(namespace, 'step-a', terminating.metadata.uid);
    assert.equal(a?.deletionTimestamp, '2026-01-01T00:00:30Z');
    const b = await source.getPod(namespace, finished.metadata.name, finished.metadata.uid);
    assert.equal(b?.labels['workflows.argoproj.io/completed'], 'true');
    assert.equal(b?.phase, 'Succeeded');
    assert.equal(b?.deletionTimestamp, undefined);
  });

  it('names that cannot exist in Kubernetes are undefined without a request', async () => {
    const { source, requests } = newSource();
    const before = cluster.totalRequests();
    assert.equal(await source.getNamespace('..'), undefined);
    assert.equal(await source.getNamespace(''), undefined);
    assert.equal(await source.getNamespace('Upper'), undefined);
    assert.equal(await source.getServiceAccount('ci', '..'), undefined);
    assert.equal(await source.getPod('ci', '..', randomUUID()), undefined);
    assert.equal(await source.getPod('ci/../x', 'p', randomUUID()), undefined);
    assert.equal(await source.getPod('ci', 'a/b', randomUUID()), undefined);
    assert.equal(cluster.totalRequests(), before);
    assert.deepEqual(requests, []);
  });
});

describe('KubernetesMetadataSource: connections', () => {
  it('lookups reuse one connection to the API server instead of one each (the client would open a new one per call)', async () => {
    const { source } = newSource({ cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 } });
    const namespace = unique('reuse');
    const pods = Array.from({ length: 20 }, (_, i) => cluster.putPod(namespace, `step-${i}`));
    const before = cluster.connectionCount();
    for (const [i, pod] of pods.entries()) assert.equal((await source.getPod(namespace, `step-${i}`, pod.metadata.uid))?.uid, pod.metadata.uid);
    assert.equal(cluster.connectionCount() - before, 1);
    // In parallel, no more connections than requests in flight, and answers still match their pods.
    const answers = await Promise.all(pods.map((pod, i) => source.getPod(namespace, `step-${i}`, pod.metadata.uid)));
    assert.deepEqual(answers.map((answer) => answer?.uid), pods.map((pod) => pod.metadata.uid));
    assert.ok(cluster.connectionCount() - before <= pods.length);
  });
});

describe('KubernetesMetadataSource: a pooled connection the API server has closed', () => {
  const scratch = useScratchDir('tb-stale-connection-');

  it('a lookup sent on it is sent once more on a new connection, and answered; nothing reaches the caller', async () => {
    // An API server that drops a connection when a second request arrives on it, as one whose idle timeout fired
    // just as the request went out.
    let connections = 0;
    let requests = 0;
    const perSocket = new WeakMap<object, number>();
    const server = createServer((req, res) => {
      requests += 1;
      const seen = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, seen);
      if (seen > 1) {
        req.socket.destroy();
        return;
      }
      const name = req.url?.split('/').at(-1) ?? '';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name, namespace: 'ci', uid: `uid-${name}` }, status: { phase: 'Running' } }));
    });
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const kubeconfig = await scratch.write('stale.yaml', [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ]);
      const { source, requests: reported } = newSource({ connection: { kubeconfig }, cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 } });
      assert.equal((await source.getPod('ci', 'first', 'uid-first'))?.uid, 'uid-first');
      assert.equal((await source.getPod('ci', 'second', 'uid-second'))?.uid, 'uid-second');
      assert.deepEqual({ connections, requests }, { connections: 2, requests: 3 });
      // One answered request per lookup is what the metrics count: the retry is part of the lookup.
      assert.deepEqual(reported, [{ resource: 'pods', code: '200' }, { resource: 'pods', code: '200' }]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('KubernetesMetadataSource: caching', () => {
  it('caches a pod by its UID: a second lookup does not reach the server; a re-created pod is looked up afresh', async () => {
    const { source } = newSource();
    const namespace = unique('ci');
    const first = cluster.putPod(namespace, 'step');
    const path = podPath(namespace, 'step');
    assert.equal((await source.getPod(namespace, 'step', first.metadata.uid))?.uid, first.metadata.uid);
    assert.equal((await source.getPod(namespace, 'step', first.metadata.uid))?.uid, first.metadata.uid);
    assert.equal(cluster.requestCount('GET', path), 1);

    const second = cluster.putPod(namespace, 'step'); // same name, new UID
    assert.notEqual(second.metadata.uid, first.metadata.uid);
    assert.equal((await source.getPod(namespace, 'step', second.metadata.uid))?.uid, second.metadata.uid);
    assert.equal(cluster.requestCount('GET', path), 2);
    // The old token's entry is its own: served from cache until it expires, never mixed with the new pod's.
    assert.equal((await source.getPod(namespace, 'step', first.metadata.uid))?.uid, first.metadata.uid);
    assert.equal(cluster.requestCount('GET', path), 2);
  });

  it('a pod is refetched once its 10 s lifetime has passed on the injected clock', async () => {
    const { source, clock } = newSource();
    const namespace = unique('ci');
    const pod = cluster.putPod(namespace, 'step');
    const path = podPath(namespace, 'step');
    await source.getPod(namespace, 'step', pod.metadata.uid);
    clock.advance(9.999);
    await source.getPod(namespace, 'step', pod.metadata.uid);
    assert.equal(cluster.requestCount('GET', path), 1);
    cluster.markTerminating(namespace, 'step', '2026-01-01T00:01:00Z');
    clock.advance(0.001);
    assert.equal((await source.getPod(namespace, 'step', pod.metadata.uid))?.deletionTimestamp, '2026-01-01T00:01:00Z');
    assert.equal(cluster.requestCount('GET', path), 2);
  });

  it('a namespace and a service account live 60 s; a 404 is cached for the same lifetime', async () => {
    const { source, clock } = newSource();
    const name = unique('team');
    assert.equal(await source.getNamespace(name), undefined);
    assert.equal(await source.getServiceAccount(name, 'runner'), undefined);
    cluster.putNamespace(name, { labels: { tier: 'gold' } });
    cluster.putServiceAccount(name, 'runner');
    clock.advance(59);
    assert.equal(await source.getNamespace(name), undefined, 'the 404 is still cached');
    assert.equal(await source.getServiceAccount(name, 'runner'), undefined, 'the 404 is still cached');
    assert.equal(cluster.requestCount('GET', namespacePath(name)), 1);
    assert.equal(cluster.requestCount('GET', serviceAccountPath(name, 'runner')), 1);
    clock.advance(1);
    assert.equal((await source.getNamespace(name))?.labels['tier'], 'gold');
    assert.equal((await source.getServiceAccount(name, 'runner'))?.name, 'runner');
    assert.equal(cluster.requestCount('GET', namespacePath(name)), 2);
    assert.equal(cluster.requestCount('GET', serviceAccountPath(name, 'runner')), 2);
    clock.advance(59.999);
    await source.getNamespace(name);
    assert.equal(cluster.requestCount('GET', namespacePath(name)), 2);
  });

  it('a lifetime of 0 disables caching', async () => {
    const { source } = newSource({ cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 } });
    const name = unique('team');
    cluster.putNamespace(name);
    await source.getNamespace(name);
    await source.getNamespace(name);
    assert.equal(cluster.requestCount('GET', namespacePath(name)), 2);
  });

  it('20 concurrent lookups of one object make one request', async () => {
    const { source, requests } = newSource();
    const namespace = unique('ci');
    const pod = cluster.putPod(namespace, 'step', { labels: { app: 'x' } });
    cluster.putNamespace(namespace);
    const [pods, namespaces] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, () => source.getPod(namespace, 'step', pod.metadata.uid))),
      Promise.all(Array.from({ length: 20 }, () => source.getNamespace(namespace))),
    ]);
    assert.equal(cluster.requestCount('GET', podPath(namespace, 'step')), 1);
    assert.equal(cluster.requestCount('GET', namespacePath(namespace)), 1);
    assert.equal(new Set(pods.map((p) => p?.uid)).size, 1);
    assert.equal(pods[19]?.uid, pod.metadata.uid);
    assert.equal(namespaces[19]?.name, namespace);
    assert.equal(requests.length, 2);
  });

  it('token reviews are not cached', async () => {
    const { source } = newSource();
    cluster.setTokenReviewer(() => ({ authenticated: false, error: 'invalid bearer token' }));
    const before = cluster.requestCount('POST', TOKEN_REVIEWS);
    await source.reviewToken('same-token', [AUDIENCE]);
    await source.reviewToken('same-token', [AUDIENCE]);
    assert.equal(cluster.requestCount('POST', TOKEN_REVIEWS), before + 2);
  });
});

describe('KubernetesMetadataSource: API failures become 503 kubernetes_unavailable', () => {
  const modes: ReadonlyArray<{ mode: Exclude<DownMode, false>; code: string; detail: RegExp }> = [
    { mode: 'error503', code: '503', detail: /^GET pod [a-z0-9-]+\/step: HTTP 503: the server is currently unable to handle the request$/ },
    { mode: 'hang', code: 'error', detail: /^GET pod [a-z0-9-]+\/step: no answer within 300 ms$/ },
    { mode: 'reset', code: 'error', detail: /^GET pod [a-z0-9-]+\/step: .*socket hang up/ },
    { mode: 'garbage', code: 'error', detail: /^GET pod [a-z0-9-]+\/step: the answer is not valid JSON$/ },
  ];
  for (const { mode, code, detail } of modes) {
    it(`${mode}: 503 kubernetes_unavailable within the time limit, not cached, recovers on the next call`, async () => {
      const { source, requests, seconds } = newSource({ timeoutMs: 300 });
      const namespace = unique('ci');
      const pod = cluster.putPod(namespace, 'step');
      cluster.setDown(mode);
      const started = performance.now();
      const error = await rejectsUnavailable(source.getPod(namespace, 'step', pod.metadata.uid));
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 300 + 700, `answered in ${Math.round(elapsed)} ms`);
      if (mode === 'hang') assert.ok(elapsed >= 290, `waited the time limit, not ${Math.round(elapsed)} ms`);
      if (mode === 'hang') assert.ok((seconds[0] ?? 0) >= 0.29, `the hook saw ${seconds[0]} s`);
      assert.match(error.detail ?? '', detail);
      assert.deepEqual(requests, [{ resource: 'pods', code }]);
      assert.ok((seconds[0] ?? -1) >= 0);

      cluster.setDown(false);
      assert.equal((await source.getPod(namespace, 'step', pod.metadata.uid))?.uid, pod.metadata.uid);
      assert.equal(cluster.requestCount('GET', podPath(namespace, 'step')), 2);
      assert.deepEqual(requests, [
        { resource: 'pods', code },
        { resource: 'pods', code: '200' },
      ]);
    });
  }

  it('concurrent lookups during an outage share one failed request; the next call tries again', async () => {
    const { source } = newSource({ timeoutMs: 300 });
    const name = unique('team');
    cluster.putNamespace(name);
    cluster.setDown('error503');
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => source.getNamespace(name)));
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected', 'rejected', 'rejected'],
    );
    assert.equal(cluster.requestCount('GET', namespacePath(name)), 1);
    cluster.setDown(false);
    assert.equal((await source.getNamespace(name))?.name, name);
    assert.equal(cluster.requestCount('GET', namespacePath(name)), 2);
  });

  it('a wrong token in the kubeconfig: the 401 becomes kubernetes_forbidden (500, the broker\'s own misconfiguration), not "not found" nor an outage', async () => {
    const wrong = await cluster.writeKubeconfig(dir, { token: 'not-the-token', fileName: 'wrong-token.yaml' });
    const { source, requests } = newSource({ connection: { kubeconfig: wrong } });
    const namespace = unique('ci');
    const pod = cluster.putPod(namespace, 'step');
    const error = await rejectsForbidden(source.getPod(namespace, 'step', pod.metadata.uid));
    assert.equal(
      error.detail,
      // The API server's own words from its Status body ("Unauthorized"), then what it means for the broker.
      `GET pod ${namespace}/step: HTTP 401: Unauthorized; the API server does not accept the broker's credential (expired or revoked token, wrong kubeconfig user)`,
    );
    assert.deepEqual(error.facts, { permission: 'get pods', apiStatus: 401 });
    const review = await rejectsForbidden(source.reviewToken('a-subject-token', [AUDIENCE]));
    assert.equal(
      review.detail,
      'CREATE tokenreview (audiences ["tyk-token-broker"]): HTTP 401; the API server does not accept the broker\'s credential (expired or revoked token, wrong kubeconfig user)',
    );
    assert.deepEqual(requests, [
      { resource: 'pods', code: '401' },
      { resource: 'tokenreviews', code: '401' },
    ]);
  });

  it('close() aborts a request in flight and later calls fail', async () => {
    const { source } = newSource({ timeoutMs: 5000 });
    const name = unique('team');
    cluster.setDown('hang');
    const pending = source.getNamespace(name);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    source.close();
    const error = await rejectsUnavailable(pending);
    assert.ok(performance.now() - started < 1000);
    assert.equal(error.detail, `GET namespace ${name}: the Kubernetes metadata source is closed`);
    cluster.setDown(false);
    const later = await rejectsUnavailable(source.getNamespace(name));
    assert.equal(later.detail, `GET namespace ${name}: the Kubernetes metadata source is closed`);
  });

  it('an events hook that throws does not change the answer', async () => {
    const source = createKubernetesMetadataSource({
      connection: { kubeconfig },
      cacheSeconds: CACHE_SECONDS,
      now: Date.now,
      events: {
        onRequest() {
          throw new Error('metrics exploded');
        },
      },
    });
    sources.push(source);
    const name = unique('team');
    cluster.putNamespace(name);
    assert.equal((await source.getNamespace(name))?.name, name);
  });
});

describe('KubernetesMetadataSource: TokenReview', () => {
  it('authenticated: audiences, username and the pod binding from user.extra; the spec sent is token + audiences', async () => {
    const { source, requests } = newSource();
    const podUid = randomUUID();
    cluster.setTokenReviewer((spec) =>
      spec.token === 'good-token'
        ? serviceAccountReview({ namespace: 'ci', serviceAccount: 'wf-runner', audiences: [AUDIENCE], podName: 'wf-main-1', podUid })
        : { authenticated: false, error: 'invalid bearer token' },
    );
    const sent = cluster.tokenReviews.length;
    assert.deepEqual(await source.reviewToken('good-token', [AUDIENCE]), {
      authenticated: true,
      audiences: [AUDIENCE],
      username: 'system:serviceaccount:ci:wf-runner',
      podName: 'wf-main-1',
      podUid,
    });
    assert.deepEqual(cluster.tokenReviews.slice(sent), [{ token: 'good-token', audiences: [AUDIENCE] }]);
    assert.deepEqual(requests, [{ resource: 'tokenreviews', code: '201' }]);
  });

  it('unauthenticated: authenticated false with the API server\'s error', async () => {
    const { source } = newSource();
    cluster.setTokenReviewer(() => ({ authenticated: false, error: '[invalid bearer token, service account token has expired]' }));
    assert.deepEqual(await source.reviewToken('expired-token', [AUDIENCE]), {
      authenticated: false,
      audiences: [],
      error: '[invalid bearer token, service account token has expired]',
    });
  });

  it('authenticated without audiences (the API server\'s own audience): audiences is empty for the caller to refuse', async () => {
    const { source } = newSource();
    cluster.setTokenReviewer(() => ({ ...serviceAccountReview({ namespace: 'ci', serviceAccount: 'wf-runner', audiences: [] }) }));
    assert.deepEqual(await source.reviewToken('api-audience-token', [AUDIENCE]), {
      authenticated: true,
      audiences: [],
      username: 'system:serviceaccount:ci:wf-runner',
    });
  });

  it('an API server error that quotes the token: the detail says [token] instead', async () => {
    const { source, requests } = newSource();
    cluster.setTokenReviewer((spec) => {
      throw new Error(`webhook could not review ${spec.token}`);
    });
    const error = await rejectsUnavailable(source.reviewToken('secret-subject-token', [AUDIENCE]));
    assert.equal(
      error.detail,
      'CREATE tokenreview (audiences ["tyk-token-broker"]): HTTP 500: Internal error occurred: webhook could not review [token]',
    );
    assert.deepEqual(requests, [{ resource: 'tokenreviews', code: '500' }]);
  });

  it('an outage during a review is kubernetes_unavailable and the detail never carries the token', async () => {
    const { source, requests } = newSource({ timeoutMs: 300 });
    for (const mode of ['error503', 'hang', 'reset', 'garbage'] as const) {
      cluster.setDown(mode);
      const error = await rejectsUnavailable(source.reviewToken('secret-subject-token', [AUDIENCE]));
      assert.ok(!(error.detail ?? '').includes('secret-subject-token'), `${mode}: ${error.detail}`);
      assert.ok(!error.message.includes('secret-subject-token'));
    }
    assert.deepEqual(
      requests.map((r) => r.code),
      ['503', 'error', 'error', 'error'],
    );
  });
});

describe('KubernetesMetadataSource: configuration', () => {
  const scratch = useScratchDir('tb-kubeconfig-');

  it('refuses a plain-HTTP server without insecure-skip-tls-verify at creation, not per request', async () => {
    const path = await scratch.write('http-verify.yaml', [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ]);
    assert.throws(
      () => createKubernetesMetadataSource({ connection: { kubeconfig: path }, cacheSeconds: CACHE_SECONDS, now: Date.now }),
      { message: 'Kubernetes API: server http://127.0.0.1:1 is plain HTTP; the client only allows that with insecure-skip-tls-verify: true' },
    );
  });

  it('without a kubeconfig outside a cluster: a clear error at creation', () => {
    // The loader sets apiServer only in a pod (KUBERNETES_SERVICE_HOST/PORT): with neither, there is nothing to reach.
    assert.throws(() => createKubernetesMetadataSource({ connection: {}, cacheSeconds: CACHE_SECONDS, now: Date.now }), {
      message: 'Kubernetes API: not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no kubeconfig given',
    });
  });

  it('in a pod: the API server the loader found, with the pod\'s mounted service-account token and CA', () => {
    const kubeConfig = loadKubeConfig({ apiServer: 'https://10.96.0.1:443' });
    assert.deepEqual(
      { server: kubeConfig.getCurrentCluster()?.server, caFile: kubeConfig.getCurrentCluster()?.caFile, user: kubeConfig.getCurrentUser()?.authProvider },
      {
        server: 'https://10.96.0.1:443',
        caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
        user: { name: 'tokenFile', config: { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' } },
      },
    );
  });

});

describe('stand-in Kubernetes API server: real shapes', () => {
  async function get(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${cluster.baseUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${cluster.token}`, ...(init.headers as Record<string, string> | undefined) },
    });
    return { status: response.status, body: await response.json() };
  }

  it('404 is a Status NotFound body naming the object', async () => {
    assert.deepEqual(await get('/api/v1/namespaces/ci/pods/x'), {
      status: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'pods "x" not found',
        reason: 'NotFound',
        details: { name: 'x', kind: 'pods' },
        code: 404,
      },
    });
  });

  it('401 without the kubeconfig token, 405 for other methods', async () => {
    const unauthorized = await get('/api/v1/namespaces/ci', { headers: { authorization: 'Bearer wrong' } });
    assert.equal(unauthorized.status, 401);
    assert.deepEqual(unauthorized.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    const deleted = await get('/api/v1/namespaces/ci/pods/x', { method: 'DELETE' });
    assert.equal(deleted.status, 405);
    const listed = await get(TOKEN_REVIEWS);
    assert.equal(listed.status, 405);
    assert.equal(cluster.requestCount('DELETE', '/api/v1/namespaces/ci/pods/x'), 1);
  });

  it('serves a v1 Pod with apiVersion, kind, metadata and status.phase', async () => {
    const namespace = unique('ci');
    const pod = cluster.putPod(namespace, 'p', { labels: { a: 'b' } });
    const { status, body } = await get(podPath(namespace, 'p'));
    assert.equal(status, 200);
    assert.deepEqual(body, pod);
    assert.equal(pod.apiVersion, 'v1');
    assert.equal(pod.kind, 'Pod');
    assert.match(pod.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(pod.status, { phase: 'Running' });
  });
});
