import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { serviceAccountReview, startStandInKubernetes, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { realKubernetesUnavailableReason, startRealKubernetes, type RealKubernetes } from './real-kubernetes.js';

/*
 * A cluster in its own terms (namespaces, service accounts, pods, projected tokens), backed by the stand-in
 * (test/fakes/stand-in-issuer.ts + stand-in-kubernetes.ts) or by a real kube-apiserver and etcd. The contracts in
 * test/kubernetes-real run the same cases on both, so the stand-in the rest of the suite uses cannot drift.
 */

/** Why the real cluster cannot run here (binaries missing outside CI), or false. */
export const REAL_SKIP: string | false = realKubernetesUnavailableReason() ?? false;
export const AUDIENCE = 'tyk-token-broker';
export const NS = 'payments';
export const SA = 'argo-workflow-runner';

export interface Pod {
  readonly name: string;
  readonly uid: string;
}

/** What a case does to a cluster, in the cluster's own terms. */
export interface ContractCluster {
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

export async function standInCluster(): Promise<ContractCluster> {
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

export async function realCluster(): Promise<ContractCluster> {
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
