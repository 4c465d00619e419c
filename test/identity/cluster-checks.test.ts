import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkWithCluster, type ClusterAccess, type ClusterNeeds } from '../../src/server/identity/cluster-checks.js';
import { BrokerError, temporarilyUnavailable, type ReasonCode } from '../../src/server/errors.js';
import type { KubernetesMetadataSource, NamespaceInfo, PodInfo, ServiceAccountInfo, TokenReviewResult } from '../../src/server/identity/kubernetes-metadata.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';

const NAMESPACE = 'payments';
const SERVICE_ACCOUNT = 'argo-runner';
const SA_UID = 'e6a8680e-0000-4000-8000-00000000000a';
const POD_NAME = 'orders-sync-x7k2p-call-api-3149217812';
const POD_UID = '0d8b260e-0000-4000-8000-000000000001';
const SUBJECT_TOKEN = 'header.payload.signature';
const AUDIENCES = ['tyk-token-broker'] as const;

const NO_NEEDS: ClusterNeeds = { namespaceLabels: false, serviceAccountLabels: false, pod: false };
const ALL_NEEDS: ClusterNeeds = { namespaceLabels: true, serviceAccountLabels: true, pod: true };

function identity(overrides: Partial<WorkloadIdentity> = {}): WorkloadIdentity {
  return {
    issuerName: 'cluster-a',
    issuer: 'https://cluster-a.example',
    subject: `system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`,
    namespace: NAMESPACE,
    serviceAccount: SERVICE_ACCOUNT,
    serviceAccountUid: SA_UID,
    podName: POD_NAME,
    podUid: POD_UID,
    claims: {},
    ...overrides,
  };
}

const { podName: _n, podUid: _u, ...secretBoundBase } = identity();
const SECRET_BOUND: WorkloadIdentity = { ...secretBoundBase, secretName: 'argo-runner-token-abcde' };

function livePod(overrides: Partial<PodInfo> = {}): PodInfo {
  return {
    name: POD_NAME,
    namespace: NAMESPACE,
    uid: POD_UID,
    labels: { 'workflows.argoproj.io/workflow': 'orders-sync-x7k2p', 'workflows.argoproj.io/completed': 'false' },
    annotations: { 'workflows.argoproj.io/node-name': 'orders-sync-x7k2p.call-api' },
    phase: 'Running',
    ...overrides,
  };
}

const NAMESPACE_INFO: NamespaceInfo = { name: NAMESPACE, uid: 'ns-uid', labels: { team: 'payments' }, annotations: {} };
const SA_INFO: ServiceAccountInfo = { name: SERVICE_ACCOUNT, namespace: NAMESPACE, uid: SA_UID, labels: { role: 'deployer' }, annotations: {} };

const AUTHENTICATED: TokenReviewResult = {
  authenticated: true,
  audiences: ['tyk-token-broker'],
  username: `system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`,
  podName: POD_NAME,
  podUid: POD_UID,
};

interface FakeState {
  pod?: PodInfo;
  namespace?: NamespaceInfo;
  serviceAccount?: ServiceAccountInfo;
  review?: TokenReviewResult;
  /** Calls to these methods reject with kubernetes_unavailable. */
  failing?: readonly ('getPod' | 'getNamespace' | 'getServiceAccount' | 'reviewToken')[];
}

interface FakeSource extends KubernetesMetadataSource {
  /** Every call, in order, with its arguments. */
  readonly calls: string[];
}

/** A KubernetesMetadataSource answering from fixed objects; records calls, and fails on demand like the real one. */
function fakeSource(state: FakeState): FakeSource {
  const calls: string[] = [];
  const answer = <T>(method: NonNullable<FakeState['failing']>[number], value: T): Promise<T> =>
    state.failing?.includes(method)
      ? Promise.reject(temporarilyUnavailable('kubernetes_unavailable', 'The broker cannot check this workload with the Kubernetes API right now; retry shortly.', {
          detail: `${method}: HTTP 503`,
        }))
      : Promise.resolve(value);
  return {
    calls,
    getNamespace(name) {
      calls.push(`getNamespace ${name}`);
      return answer('getNamespace', state.namespace?.name === name ? state.namespace : undefined);
    },
    getServiceAccount(namespace, name) {
      calls.push(`getServiceAccount ${namespace}/${name}`);
      const sa = state.serviceAccount;
      return answer('getServiceAccount', sa?.namespace === namespace && sa.name === name ? sa : undefined);
    },
    getPod(namespace, name, uid) {
      calls.push(`getPod ${namespace}/${name} ${uid}`);
      const pod = state.pod;
      return answer('getPod', pod?.namespace === namespace && pod.name === name ? pod : undefined);
    },
    reviewToken(token, audiences) {
      calls.push(`reviewToken ${token} [${audiences.join(',')}]`);
      return answer('reviewToken', state.review ?? { authenticated: false, audiences: [], error: 'no reviewer' });
    },
    close() {
      calls.push('close');
    },
  };
}

function access(source: KubernetesMetadataSource, overrides: Partial<Omit<ClusterAccess, 'source'>> = {}): ClusterAccess {
  return { podBinding: 'enforce', verification: 'jwks', source, ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BrokerError, `expected a BrokerError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

async function assertRejects(promise: Promise<unknown>, code: ReasonCode, status: number, oauthError: string): Promise<BrokerError> {
  const error = await rejection(promise);
  assert.equal(error.code, code);
  assert.equal(error.status, status);
  assert.equal(error.oauthError, oauthError);
  return error;
}

describe('checkWithCluster: pod binding', () => {
  it('enforce: looks up the token\'s pod by namespace, name and token UID, and its service account; returns the pod\'s labels and annotations', async () => {
    const source = fakeSource({ pod: livePod(), serviceAccount: SA_INFO });
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source), NO_NEEDS);
    assert.deepEqual(source.calls, [`getPod ${NAMESPACE}/${POD_NAME} ${POD_UID}`, `getServiceAccount ${NAMESPACE}/${SERVICE_ACCOUNT}`]);
    assert.deepEqual(checked, {
      ...identity(),
      cluster: { podLabels: livePod().labels, podAnnotations: livePod().annotations },
    });
  });

  const refusals: readonly { name: string; state: FakeState; code: ReasonCode }[] = [
    { name: 'pod gone', state: { serviceAccount: SA_INFO }, code: 'pod_not_found' },
    { name: 'pod re-created with another UID', state: { pod: livePod({ uid: 'another-uid' }) }, code: 'pod_uid_mismatch' },
    { name: 'pod terminating', state: { pod: livePod({ deletionTimestamp: '2026-01-01T00:00:30Z' }) }, code: 'pod_terminating' },
    {
      name: 'Argo step completed',
      state: { pod: livePod({ labels: { 'workflows.argoproj.io/completed': 'true' }, phase: 'Succeeded' }) },
      code: 'workflow_completed',
    },
  ];
  for (const c of refusals) {
    it(`enforce: ${c.name} -> 400 ${c.code}`, async () => {
      const source = fakeSource(c.state);
      await assertRejects(checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source), ALL_NEEDS), c.code, 400, 'invalid_request');
    });
  }

  it('enforce: a Secret-bound token -> not_pod_bound, without asking for any pod', async () => {
    const source = fakeSource({ pod: livePod(), serviceAccount: SA_INFO });
    const error = await assertRejects(checkWithCluster(SECRET_BOUND, SUBJECT_TOKEN, AUDIENCES, access(source), NO_NEEDS), 'not_pod_bound', 400, 'invalid_request');
    assert.equal(error.description, 'The subject token is bound to a Secret, not a pod; this broker accepts only pod-bound projected tokens.');
    assert.equal(source.calls.some((call) => call.startsWith('getPod')), false);
  });

  it('enforce: the service account deleted -> service_account_not_found; re-created (another UID) -> service_account_uid_mismatch', async () => {
    await assertRejects(
      checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(fakeSource({ pod: livePod() })), NO_NEEDS),
      'service_account_not_found',
      400,
      'invalid_request',
    );
    const recreated = fakeSource({ pod: livePod(), serviceAccount: { ...SA_INFO, uid: 'another-sa-uid' } });
    const error = await assertRejects(checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(recreated), NO_NEEDS), 'service_account_uid_mismatch', 400, 'invalid_request');
    assert.equal(error.description, 'The service account this subject token was issued to was deleted; one of the same name exists now, but it is another identity.');
  });

  it('off: no pod lookup when no rule needs the pod; a deleted pod is fine', async () => {
    const source = fakeSource({});
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { podBinding: 'off' }), NO_NEEDS);
    assert.deepEqual(source.calls, []);
    assert.deepEqual(checked.cluster, {});
  });

  it('off: a Secret-bound token is accepted', async () => {
    const source = fakeSource({ serviceAccount: SA_INFO });
    const checked = await checkWithCluster(SECRET_BOUND, SUBJECT_TOKEN, AUDIENCES, access(source, { podBinding: 'off' }), ALL_NEEDS);
    assert.deepEqual(source.calls, [`getNamespace ${NAMESPACE}`, `getServiceAccount ${NAMESPACE}/${SERVICE_ACCOUNT}`]);
    assert.deepEqual(checked.cluster, { namespaceLabels: {}, serviceAccountLabels: { role: 'deployer' } });
  });

  it('off but rules read the pod: a live pod gives its labels', async () => {
    const source = fakeSource({ pod: livePod() });
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { podBinding: 'off' }), { ...NO_NEEDS, pod: true });
    assert.deepEqual(source.calls, [`getPod ${NAMESPACE}/${POD_NAME} ${POD_UID}`]);
    assert.deepEqual(checked.cluster, { podLabels: livePod().labels, podAnnotations: livePod().annotations });
  });

  it('off but rules read the pod: a re-created pod\'s labels are not the token\'s', async () => {
    const source = fakeSource({ pod: livePod({ uid: 'another-uid', labels: { 'example.com/needs': 'payments-write' } }) });
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { podBinding: 'off' }), { ...NO_NEEDS, pod: true });
    assert.deepEqual(checked.cluster, {});
  });

  it('off but rules read the pod: a deleted pod gives no pod labels (pod rules cannot match), not an error', async () => {
    const source = fakeSource({});
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { podBinding: 'off' }), { ...NO_NEEDS, pod: true });
    assert.deepEqual(checked.cluster, {});
  });
});

describe('checkWithCluster: labels for the rules', () => {
  it('looks up namespace and service account only when the rules need them, all at once', async () => {
    const source = fakeSource({ pod: livePod(), namespace: NAMESPACE_INFO, serviceAccount: SA_INFO });
    const pending = checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source), ALL_NEEDS);
    // Every lookup is sent before any answer is awaited.
    assert.deepEqual(source.calls, [
      `getPod ${NAMESPACE}/${POD_NAME} ${POD_UID}`,
      `getNamespace ${NAMESPACE}`,
      `getServiceAccount ${NAMESPACE}/${SERVICE_ACCOUNT}`,
    ]);
    const checked = await pending;
    assert.deepEqual(checked.cluster, {
      namespaceLabels: { team: 'payments' },
      serviceAccountLabels: { role: 'deployer' },
      podLabels: livePod().labels,
      podAnnotations: livePod().annotations,
    });
  });

  it('a namespace that does not exist has no labels', async () => {
    const source = fakeSource({ pod: livePod(), serviceAccount: SA_INFO });
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source), ALL_NEEDS);
    assert.deepEqual(checked.cluster?.namespaceLabels, {});
  });

  it('a service account looked up for its labels that does not exist, or is another of the same name, refuses the token (pod binding off too)', async () => {
    const needs = { ...NO_NEEDS, serviceAccountLabels: true };
    const off = { podBinding: 'off' } as const;
    await assertRejects(checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(fakeSource({}), off), needs), 'service_account_not_found', 400, 'invalid_request');
    const recreated = fakeSource({ serviceAccount: { ...SA_INFO, uid: 'another-sa-uid' } });
    await assertRejects(checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(recreated, off), needs), 'service_account_uid_mismatch', 400, 'invalid_request');
  });

  it('a token without a service-account UID takes the service account\'s labels by name', async () => {
    const { serviceAccountUid: _sa, ...noSaUid } = identity();
    const source = fakeSource({ pod: livePod(), serviceAccount: SA_INFO });
    const checked = await checkWithCluster(noSaUid, SUBJECT_TOKEN, AUDIENCES, access(source), { ...NO_NEEDS, serviceAccountLabels: true });
    assert.deepEqual(checked.cluster?.serviceAccountLabels, { role: 'deployer' });
  });
});

describe('checkWithCluster: the API failing never lets a workload through', () => {
  for (const method of ['getPod', 'getNamespace', 'getServiceAccount', 'reviewToken'] as const) {
    it(`${method} unavailable -> 503 kubernetes_unavailable`, async () => {
      const source = fakeSource({ pod: livePod(), namespace: NAMESPACE_INFO, serviceAccount: SA_INFO, review: AUTHENTICATED, failing: [method] });
      await assertRejects(
        checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { verification: 'tokenreview' }), ALL_NEEDS),
        'kubernetes_unavailable',
        503,
        'temporarily_unavailable',
      );
    });
  }

  it('pod lookup unavailable with podBinding off but rules reading the pod -> still 503', async () => {
    const source = fakeSource({ failing: ['getPod'] });
    await assertRejects(
      checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { podBinding: 'off' }), { ...NO_NEEDS, pod: true }),
      'kubernetes_unavailable',
      503,
      'temporarily_unavailable',
    );
  });
});

describe('checkWithCluster: TokenReview', () => {
  it('sends the subject token and the issuer\'s audiences, and passes an authenticated review', async () => {
    const source = fakeSource({ pod: livePod(), serviceAccount: SA_INFO, review: AUTHENTICATED });
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, ['other', 'tyk-token-broker'], access(source, { verification: 'tokenreview' }), NO_NEEDS);
    assert.deepEqual(source.calls, [
      `reviewToken ${SUBJECT_TOKEN} [other,tyk-token-broker]`,
      `getPod ${NAMESPACE}/${POD_NAME} ${POD_UID}`,
      `getServiceAccount ${NAMESPACE}/${SERVICE_ACCOUNT}`,
    ]);
    assert.deepEqual(checked.cluster, { podLabels: livePod().labels, podAnnotations: livePod().annotations });
  });

  it('jwks verification sends no TokenReview', async () => {
    const source = fakeSource({ pod: livePod(), serviceAccount: SA_INFO, review: AUTHENTICATED });
    await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source), NO_NEEDS);
    assert.equal(source.calls.some((call) => call.startsWith('reviewToken')), false);
  });

  const rejected: readonly { name: string; review: TokenReviewResult; description: string; detail: string | undefined }[] = [
    {
      name: 'unauthenticated',
      review: { authenticated: false, audiences: [], error: '[invalid bearer token, service account token has been invalidated]' },
      description: 'The cluster\'s API server did not authenticate the subject token (it may be revoked, or its pod or service account deleted).',
      detail: 'TokenReview: [invalid bearer token, service account token has been invalidated]',
    },
    {
      name: 'unauthenticated without a reason',
      review: { authenticated: false, audiences: [] },
      description: 'The cluster\'s API server did not authenticate the subject token (it may be revoked, or its pod or service account deleted).',
      detail: 'TokenReview: not authenticated',
    },
    {
      name: 'authenticated for another audience',
      review: { ...AUTHENTICATED, audiences: ['https://kubernetes.default.svc'] },
      description: 'The cluster\'s API server did not accept the subject token for this broker\'s audience.',
      detail: 'TokenReview audiences: [https://kubernetes.default.svc]',
    },
    {
      name: 'authenticated for the API server\'s own audience (empty list)',
      review: { ...AUTHENTICATED, audiences: [] },
      description: 'The cluster\'s API server did not accept the subject token for this broker\'s audience.',
      detail: 'TokenReview audiences: []',
    },
    {
      name: 'authenticated for another pod',
      review: { ...AUTHENTICATED, podUid: 'another-pod-uid' },
      description: 'The cluster\'s API server reports a different pod for this subject token.',
      detail: undefined,
    },
  ];
  for (const c of rejected) {
    it(`${c.name} -> 400 token_review_rejected`, async () => {
      const source = fakeSource({ pod: livePod(), review: c.review });
      const error = await assertRejects(
        checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { verification: 'tokenreview' }), NO_NEEDS),
        'token_review_rejected',
        400,
        'invalid_request',
      );
      assert.equal(error.description, c.description);
      assert.equal(error.detail, c.detail);
      assert.equal(error.description.includes(SUBJECT_TOKEN), false);
    });
  }

  it('a rejected review wins over a missing pod (the token itself is bad)', async () => {
    const source = fakeSource({ review: { authenticated: false, audiences: [] } });
    await assertRejects(
      checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { verification: 'tokenreview' }), NO_NEEDS),
      'token_review_rejected',
      400,
      'invalid_request',
    );
  });

  it('an authenticated review does not replace pod binding: pod gone -> pod_not_found', async () => {
    const source = fakeSource({ review: AUTHENTICATED });
    await assertRejects(
      checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { verification: 'tokenreview' }), NO_NEEDS),
      'pod_not_found',
      400,
      'invalid_request',
    );
  });

  it('tokenreview with podBinding off: only the review is asked', async () => {
    const source = fakeSource({ review: AUTHENTICATED });
    const checked = await checkWithCluster(identity(), SUBJECT_TOKEN, AUDIENCES, access(source, { verification: 'tokenreview', podBinding: 'off' }), NO_NEEDS);
    assert.deepEqual(source.calls, [`reviewToken ${SUBJECT_TOKEN} [tyk-token-broker]`]);
    assert.deepEqual(checked.cluster, {});
  });
});
