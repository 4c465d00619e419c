import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import supertest from 'supertest';
import { createBroker, type Broker } from '../../src/broker.js';
import { validateConfig } from '../../src/config/validate-config.js';
import type { BrokerConfigInput } from '../../src/config/schema.js';
import { createKubernetesMetadataSource } from '../../src/kubernetes/kubernetes-metadata-source.js';
import { generateSigningKey } from '../../src/mint/signing-key.js';
import { staticSigningKeySet } from '../../src/mint/signing-key-set.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/protocol.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { serviceAccountReview, startStandInKubernetes, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { captureLogs } from '../support/log-capture.js';
import { realKubernetesUnavailableReason, startRealKubernetes, type RealKubernetes } from '../support/real-kubernetes.js';

/*
 * The contract between the stand-in cluster (test/fakes/stand-in-issuer.ts + stand-in-kubernetes.ts) and a real
 * kube-apiserver: the same cases, through the same broker code, must give the same answers on both. The stand-in
 * keeps the rest of the suite fast; this file keeps it honest. When the real binaries are missing (outside CI) the
 * real half is skipped with the reason, and the stand-in half still runs.
 */

const REAL_SKIP = realKubernetesUnavailableReason() ?? false;
const AUDIENCE = 'tyk-token-broker';
const NS = 'payments';
const SA = 'argo-workflow-runner';

interface Pod {
  readonly name: string;
  readonly uid: string;
}

/** What a case does to a cluster, in the cluster's own terms. */
interface ContractCluster {
  readonly issuer: { issuer: string; caFile?: string };
  readonly kubeconfig: string;
  namespace(name: string, labels: Record<string, string>): Promise<void>;
  serviceAccount(namespace: string, name: string, labels?: Record<string, string>): Promise<void>;
  deleteServiceAccount(namespace: string, name: string): Promise<void>;
  /** `holdOnDelete`: a finalizer keeps the pod, terminating, once deleted. */
  pod(namespace: string, name: string, serviceAccount: string, options?: { labels?: Record<string, string>; holdOnDelete?: boolean }): Promise<Pod>;
  /** A projected token bound to the pod, for `audience`, as the TokenRequest API issues it. */
  token(namespace: string, serviceAccount: string, pod: Pod, audience?: string): Promise<string>;
  deletePod(namespace: string, name: string): Promise<void>;
  /** Phase Succeeded, through the status subresource (no Argo label). */
  finish(namespace: string, name: string): Promise<void>;
  /** Argo's workflows.argoproj.io/completed=true label. */
  completeArgoStep(namespace: string, name: string): Promise<void>;
  /** A kubeconfig whose credential may do everything the broker needs but `get pods`. */
  kubeconfigWithoutGetPods(): Promise<string>;
  close(): Promise<void>;
}

async function standInCluster(): Promise<ContractCluster> {
  const issuer: StandInIssuer = await startStandInIssuer({ audience: AUDIENCE });
  const kube: StandInKubernetes = await startStandInKubernetes();
  const dir = await mkdtemp(join(tmpdir(), 'tb-contract-'));
  const kubeconfig = await kube.writeKubeconfig(dir);
  const live = new Map<string, Pod>();
  /** Pods created with holdOnDelete: deleting them leaves them terminating, as a finalizer does. */
  const held = new Set<string>();
  // What kube-apiserver's service-account authenticator decides: the token's pod must exist with its UID.
  kube.setTokenReviewer((spec) => {
    const claims = decodeJwt(spec.token) as { aud?: string[]; 'kubernetes.io'?: { namespace: string; pod?: Pod; serviceaccount: { name: string; uid: string } } };
    const bound = claims['kubernetes.io'];
    if (bound === undefined || !spec.audiences.some((a) => claims.aud?.includes(a))) return { authenticated: false, error: '[invalid bearer token, token audiences ... is invalid for the target audiences ...]' };
    const pod = bound.pod === undefined ? undefined : live.get(`${bound.namespace}/${bound.pod.name}`);
    if (bound.pod !== undefined && pod?.uid !== bound.pod.uid) return { authenticated: false, error: '[invalid bearer token, pod ... not found]' };
    return serviceAccountReview({
      namespace: bound.namespace,
      serviceAccount: bound.serviceaccount.name,
      audiences: spec.audiences.filter((a) => claims.aud?.includes(a)),
      serviceAccountUid: bound.serviceaccount.uid,
      ...(bound.pod !== undefined && { podName: bound.pod.name, podUid: bound.pod.uid }),
    });
  });
  return {
    issuer: { issuer: issuer.issuer },
    kubeconfig,
    async namespace(name, labels) {
      kube.putNamespace(name, { labels });
    },
    async serviceAccount(namespace, name, labels) {
      kube.putServiceAccount(namespace, name, labels !== undefined ? { labels } : {});
    },
    async deleteServiceAccount(namespace, name) {
      kube.deleteServiceAccount(namespace, name);
    },
    async pod(namespace, name, serviceAccount, options = {}) {
      const created = kube.putPod(namespace, name, { serviceAccountName: serviceAccount, phase: 'Pending', ...(options.labels !== undefined && { labels: options.labels }) });
      const pod = { name, uid: created.metadata.uid };
      live.set(`${namespace}/${name}`, pod);
      if (options.holdOnDelete === true) held.add(`${namespace}/${name}`);
      return pod;
    },
    token: (namespace, serviceAccount, pod, audience = AUDIENCE) =>
      // No kubelet runs the pod: the API server names no node, and a 600 s token is not extended (no warnafter).
      issuer.projectedToken({ namespace, serviceAccount, podName: pod.name, podUid: pod.uid, audience, lifetimeSeconds: 600, scheduled: false }),
    async deletePod(namespace, name) {
      if (held.has(`${namespace}/${name}`)) {
        kube.markTerminating(namespace, name);
        return;
      }
      kube.deletePod(namespace, name);
      live.delete(`${namespace}/${name}`);
    },
    async finish(namespace, name) {
      kube.setPhase(namespace, name, 'Succeeded');
    },
    async completeArgoStep(namespace, name) {
      // The label alone: markCompleted also ends the phase, which a real controller sets separately.
      kube.markCompleted(namespace, name);
      kube.setPhase(namespace, name, 'Pending');
    },
    async kubeconfigWithoutGetPods() {
      // The stand-in's RBAC is global; it is switched on for the one case that needs it and never switched off
      // again because that case runs last.
      kube.setForbidden(['pods']);
      return kubeconfig;
    },
    async close() {
      await kube.close();
      await issuer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function realCluster(): Promise<ContractCluster> {
  const cluster: RealKubernetes = await startRealKubernetes();
  const kubeconfig = await cluster.brokerKubeconfig();
  const must = async (method: string, path: string, body?: unknown) => {
    const answer = await cluster.request(method, path, body);
    assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  };
  return {
    issuer: { issuer: cluster.issuer, caFile: cluster.caFile },
    kubeconfig,
    async namespace(name, labels) {
      const exists = await cluster.request('GET', `/api/v1/namespaces/${name}`);
      if (exists.status === 404) await cluster.createNamespace(name, labels);
      else await must('PATCH', `/api/v1/namespaces/${name}`, { metadata: { labels } });
    },
    async serviceAccount(namespace, name, labels) {
      await cluster.createServiceAccount(namespace, name, labels);
    },
    deleteServiceAccount: (namespace, name) => must('DELETE', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`),
    pod: (namespace, name, serviceAccount, options = {}) =>
      cluster.createPod(namespace, name, { serviceAccountName: serviceAccount, ...(options.labels !== undefined && { labels: options.labels }), ...(options.holdOnDelete === true && { finalizers: ['token-broker.io/test-hold'] }) }),
    token: (namespace, serviceAccount, pod, audience = AUDIENCE) => cluster.requestToken(namespace, serviceAccount, { audience, pod }),
    deletePod: (namespace, name) => must('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`),
    finish: (namespace, name) => must('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, { status: { phase: 'Succeeded' } }),
    completeArgoStep: (namespace, name) => must('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}`, { metadata: { labels: { 'workflows.argoproj.io/completed': 'true' } } }),
    kubeconfigWithoutGetPods: () =>
      cluster.kubeconfigWithRules('tb-contract-without-get-pods', [
        { apiGroups: [''], resources: ['namespaces', 'serviceaccounts'], verbs: ['get'] },
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      ]),
    close: () => cluster.close(),
  };
}

interface Outcome {
  readonly status: number;
  readonly reason?: unknown;
  readonly policies?: string[];
}

/** The same cases, run once per cluster kind. */
function contract(kind: string, start: () => Promise<ContractCluster>, skip: string | false): void {
  describe(`cluster contract: ${kind}`, { skip, timeout: 300_000 }, () => {
    let cluster: ContractCluster;
    const brokers: Broker[] = [];
    let counter = 0;

    before(async () => {
      cluster = await start();
      await cluster.namespace(NS, { team: 'payments' });
      await cluster.serviceAccount(NS, SA, { 'token-broker.io/enabled': 'true' });
    });

    after(async () => {
      for (const broker of brokers) await broker.close();
      await cluster?.close();
    });

    async function exchanger(kubeconfig = cluster.kubeconfig) {
      const config: BrokerConfigInput = {
        server: { publicUrl: 'https://token-broker.test' },
        issuers: [{ name: 'cluster', ...cluster.issuer, audiences: [AUDIENCE], kind: 'kubernetes' }],
        signing: { algorithm: 'ES256', keysDir: '/unused/in/tests' },
        tokens: { audience: 'tyk' },
        // Nothing cached: every case sees the cluster as it is now.
        kubernetes: { kubeconfig, podBinding: 'enforce', verification: 'tokenreview', cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 } },
        rules: [
          { name: 'by-name', match: { namespaces: [NS], serviceAccounts: [SA] }, policies: ['payments-read'] },
          { name: 'by-labels', match: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, serviceAccountSelector: { matchLabels: { 'token-broker.io/enabled': 'true' } } }, policies: ['{namespace.labels.team}-write'], allowedPolicies: ['*-write'] },
          { name: 'by-pod-label', match: { namespaces: [NS], serviceAccounts: [SA], podSelector: { matchLabels: { 'token-broker.io/wants': 'ledger' } } }, requestable: ['ledger-write'] },
        ],
      };
      const validation = validateConfig(config);
      if (!validation.ok) throw new Error(JSON.stringify(validation.problems));
      const broker = createBroker(validation.config, { logger: captureLogs().logger, signingKeys: staticSigningKeySet([await generateSigningKey('ES256', Date.now())]) });
      brokers.push(broker);
      const http = supertest(broker.app);
      return async (token: string, extra: Record<string, string> = {}): Promise<Outcome> => {
        const res = await http.post('/token').type('form').send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: token, ...extra });
        if (res.status === 200) return { status: 200, policies: String(decodeJwt(String(res.body.access_token)).scope).split(' ').sort() };
        return { status: res.status, reason: (res.body as { reason?: unknown }).reason };
      };
    }

    const nextPod = async (options: { labels?: Record<string, string>; holdOnDelete?: boolean } = {}, serviceAccount = SA) => {
      counter += 1;
      return cluster.pod(NS, `contract-${counter}`, serviceAccount, options);
    };

    it('a live pod\'s token: granted by name, namespace and service-account labels, and by its pod label', async () => {
      const exchange = await exchanger();
      const plain = await nextPod();
      assert.deepEqual(await exchange(await cluster.token(NS, SA, plain)), { status: 200, policies: ['payments-read', 'payments-write'] });
      assert.deepEqual(await exchange(await cluster.token(NS, SA, plain), { scope: 'ledger-write' }), { status: 400, reason: 'scope_not_granted' });
      const labelled = await nextPod({ labels: { 'token-broker.io/wants': 'ledger' } });
      const token = await cluster.token(NS, SA, labelled);
      assert.deepEqual(await exchange(token), { status: 200, policies: ['ledger-write', 'payments-read', 'payments-write'] });
      assert.deepEqual(await exchange(token, { scope: 'ledger-write' }), { status: 200, policies: ['ledger-write'] });
    });

    it('the token\'s claim layout', async () => {
      const step = await nextPod();
      const claims = decodeJwt(await cluster.token(NS, SA, step));
      const bound = claims['kubernetes.io'] as Record<string, unknown>;
      assert.deepEqual(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'kubernetes.io', 'nbf', 'sub']);
      assert.deepEqual(Object.keys(bound).sort(), ['namespace', 'pod', 'serviceaccount']);
      assert.deepEqual(bound.pod, { name: step.name, uid: step.uid });
      assert.equal(Number(claims.exp) - Number(claims.iat), 600);
      assert.equal(claims.sub, `system:serviceaccount:${NS}:${SA}`);
    });

    it('what the broker reads back: the pod, and a TokenReview of a live and of a deleted pod\'s token', async () => {
      const source = createKubernetesMetadataSource({ connection: { kubeconfig: cluster.kubeconfig }, cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 }, now: Date.now });
      try {
        const step = await nextPod({ labels: { app: 'orders' } });
        const pod = await source.getPod(NS, step.name, step.uid);
        assert.deepEqual({ ...pod, labels: pod?.labels }, { name: step.name, namespace: NS, uid: step.uid, labels: { app: 'orders' }, annotations: {}, phase: 'Pending' });
        const token = await cluster.token(NS, SA, step);
        assert.deepEqual(await source.reviewToken(token, [AUDIENCE]), { authenticated: true, audiences: [AUDIENCE], username: `system:serviceaccount:${NS}:${SA}`, podName: step.name, podUid: step.uid });
        const gone = await nextPod();
        const goneToken = await cluster.token(NS, SA, gone);
        await cluster.deletePod(NS, gone.name);
        const review = await source.reviewToken(goneToken, [AUDIENCE]);
        assert.deepEqual({ authenticated: review.authenticated, audiences: review.audiences, hasError: typeof review.error === 'string' }, { authenticated: false, audiences: [], hasError: true });
        assert.equal(await source.getPod(NS, gone.name, gone.uid), undefined);
      } finally {
        source.close();
      }
    });

    it('pod deleted -> pod_not_found (TokenReview or pod binding, both refuse); re-created -> pod_uid_mismatch', async () => {
      const exchange = await exchanger();
      const step = await nextPod();
      const token = await cluster.token(NS, SA, step);
      await cluster.deletePod(NS, step.name);
      const gone = await exchange(token);
      assert.equal(gone.status, 400);
      assert.ok(gone.reason === 'pod_not_found' || gone.reason === 'token_review_rejected', String(gone.reason));
      await cluster.pod(NS, step.name, SA);
      const recreated = await exchange(token);
      assert.equal(recreated.status, 400);
      assert.ok(recreated.reason === 'pod_uid_mismatch' || recreated.reason === 'token_review_rejected', String(recreated.reason));
    });

    it('terminating -> pod_terminating; Succeeded -> pod_finished; Argo completed -> workflow_completed', async () => {
      const exchange = await exchanger();
      const terminating = await nextPod({ holdOnDelete: true });
      const terminatingToken = await cluster.token(NS, SA, terminating);
      await cluster.deletePod(NS, terminating.name);
      assert.deepEqual(await exchange(terminatingToken), { status: 400, reason: 'pod_terminating' });
      const finished = await nextPod();
      const finishedToken = await cluster.token(NS, SA, finished);
      await cluster.finish(NS, finished.name);
      assert.deepEqual(await exchange(finishedToken), { status: 400, reason: 'pod_finished' });
      const completed = await nextPod();
      const completedToken = await cluster.token(NS, SA, completed);
      await cluster.completeArgoStep(NS, completed.name);
      assert.deepEqual(await exchange(completedToken), { status: 400, reason: 'workflow_completed' });
    });

    it('another audience -> audience_mismatch', async () => {
      const exchange = await exchanger();
      const step = await nextPod();
      assert.deepEqual(await exchange(await cluster.token(NS, SA, step, 'another-service')), { status: 400, reason: 'audience_mismatch' });
    });

    it('service account deleted -> refused; re-created under the same name -> refused', async () => {
      const exchange = await exchanger();
      const name = 'contract-short-lived';
      await cluster.serviceAccount(NS, name, { 'token-broker.io/enabled': 'true' });
      const step = await nextPod({}, name);
      const token = await cluster.token(NS, name, step);
      assert.deepEqual(await exchange(token), { status: 200, policies: ['payments-write'] });
      await cluster.deleteServiceAccount(NS, name);
      const deleted = await exchange(token);
      assert.equal(deleted.status, 400);
      assert.ok(deleted.reason === 'service_account_not_found' || deleted.reason === 'token_review_rejected', String(deleted.reason));
      await cluster.serviceAccount(NS, name, { 'token-broker.io/enabled': 'true' });
      const recreated = await exchange(token);
      assert.equal(recreated.status, 400);
      assert.ok(recreated.reason === 'service_account_uid_mismatch' || recreated.reason === 'token_review_rejected', String(recreated.reason));
    });

    // Last: on the stand-in, the RBAC switch is global.
    it('a credential without get pods -> 500 kubernetes_forbidden, never a token', async () => {
      const exchange = await exchanger(await cluster.kubeconfigWithoutGetPods());
      const step = await nextPod();
      assert.deepEqual(await exchange(await cluster.token(NS, SA, step)), { status: 500, reason: 'kubernetes_forbidden' });
    });
  });
}

contract('the stand-in (test/fakes)', standInCluster, false);
contract('a real kube-apiserver and etcd', realCluster, REAL_SKIP);
