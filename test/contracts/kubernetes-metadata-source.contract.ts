import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BrokerError } from '../../src/server/errors.js';
import type { KubernetesMetadataSource } from '../../src/server/identity/kubernetes-metadata.js';
import { AUDIENCE, NS, SA, type ContractCluster, type Pod } from '../support/contract-clusters.js';

/**
 * What every KubernetesMetadataSource must answer, stated in the port's own terms, for a cluster in a known state.
 * Registered inside a describe that has started `cluster()` with namespace NS (label team=payments) and service
 * account SA in it; `source(kubeconfig)` is the adapter under test, with caching off so each case sees the cluster
 * as it is now. Run by test/kubernetes-real/cluster-contract.test.ts on the stand-in and on a real kube-apiserver.
 */
export function registerKubernetesMetadataSourceContract(adapter: string, cluster: () => ContractCluster, source: (kubeconfig: string) => KubernetesMetadataSource): void {
  let counter = 0;
  const opened: KubernetesMetadataSource[] = [];
  const open = (): KubernetesMetadataSource => {
    const created = source(cluster().kubeconfig);
    opened.push(created);
    return created;
  };
  const nextPod = (options: { labels?: Record<string, string>; holdOnDelete?: boolean } = {}): Promise<Pod> => {
    counter += 1;
    return cluster().pod(NS, `port-${counter}`, SA, options);
  };
  const closeAll = (): void => {
    for (const each of opened.splice(0)) each.close();
  };

  it(`${adapter}: a namespace and a service account with their labels; what does not exist is undefined`, async () => {
    const metadata = open();
    try {
      const namespace = await metadata.getNamespace(NS);
      assert.equal(namespace?.labels['team'], 'payments');
      assert.equal(namespace?.name, NS);
      const serviceAccount = await metadata.getServiceAccount(NS, SA);
      assert.deepEqual({ name: serviceAccount?.name, namespace: serviceAccount?.namespace, enabled: serviceAccount?.labels['token-broker.io/enabled'] }, { name: SA, namespace: NS, enabled: 'true' });
      assert.match(serviceAccount?.uid ?? '', /^[0-9a-f-]{36}$/);
      const missing = `missing-${randomUUID().slice(0, 8)}`;
      assert.equal(await metadata.getNamespace(missing), undefined);
      assert.equal(await metadata.getServiceAccount(NS, missing), undefined);
      assert.equal(await metadata.getPod(NS, missing, randomUUID()), undefined);
      // Names the API server would refuse: no request can name them, and none is sent.
      assert.equal(await metadata.getNamespace('..'), undefined);
      assert.equal(await metadata.getPod(NS, 'Not_A_Name', randomUUID()), undefined);
    } finally {
      closeAll();
    }
  });

  it(`${adapter}: a pod as it is now: labels, phase, a deletion in progress, the Argo completed label, gone`, async () => {
    const metadata = open();
    try {
      const step = await nextPod({ labels: { app: 'orders' } });
      assert.deepEqual(await metadata.getPod(NS, step.name, step.uid), { name: step.name, namespace: NS, uid: step.uid, labels: { app: 'orders' }, annotations: {}, phase: 'Pending' });
      await cluster().finish(NS, step.name);
      assert.equal((await metadata.getPod(NS, step.name, step.uid))?.phase, 'Succeeded');

      const argo = await nextPod();
      await cluster().completeArgoStep(NS, argo.name);
      assert.equal((await metadata.getPod(NS, argo.name, argo.uid))?.labels['workflows.argoproj.io/completed'], 'true');

      const held = await nextPod({ holdOnDelete: true });
      await cluster().deletePod(NS, held.name);
      assert.match((await metadata.getPod(NS, held.name, held.uid))?.deletionTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      const gone = await nextPod();
      await cluster().deletePod(NS, gone.name);
      assert.equal(await metadata.getPod(NS, gone.name, gone.uid), undefined);
    } finally {
      closeAll();
    }
  });

  it(`${adapter}: TokenReview of a live pod's token, of another audience's, of a deleted pod's`, async () => {
    const metadata = open();
    try {
      const step = await nextPod();
      const token = await cluster().token(NS, SA, step);
      assert.deepEqual(await metadata.reviewToken(token, [AUDIENCE]), {
        authenticated: true,
        audiences: [AUDIENCE],
        username: `system:serviceaccount:${NS}:${SA}`,
        podName: step.name,
        podUid: step.uid,
      });
      const elsewhere = await metadata.reviewToken(await cluster().token(NS, SA, step, 'another-service'), [AUDIENCE]);
      assert.deepEqual({ authenticated: elsewhere.authenticated, audiences: elsewhere.audiences }, { authenticated: false, audiences: [] });
      const gone = await nextPod();
      const goneToken = await cluster().token(NS, SA, gone);
      await cluster().deletePod(NS, gone.name);
      // The real API server checks the pod through its informer cache, which sees the deletion a moment later (seen
      // once: authenticated right after the DELETE); the broker's own pod lookup is a GET. Bounded: 5 s.
      let review = await metadata.reviewToken(goneToken, [AUDIENCE]);
      const deadline = Date.now() + 5_000;
      while (review.authenticated && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        review = await metadata.reviewToken(goneToken, [AUDIENCE]);
      }
      assert.deepEqual({ authenticated: review.authenticated, audiences: review.audiences, hasError: typeof review.error === 'string' }, { authenticated: false, audiences: [], hasError: true });
    } finally {
      closeAll();
    }
  });

  it(`${adapter}: once closed, every lookup fails with kubernetes_unavailable (503), never an answer`, async () => {
    const metadata = open();
    metadata.close();
    for (const lookup of [() => metadata.getNamespace(NS), () => metadata.getServiceAccount(NS, SA), () => metadata.reviewToken('x.y.z', [AUDIENCE])]) {
      await assert.rejects(lookup(), (error: unknown) => error instanceof BrokerError && error.code === 'kubernetes_unavailable' && error.status === 503);
    }
  });
}
