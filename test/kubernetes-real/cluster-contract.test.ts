import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import supertest from 'supertest';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';
import { createKubernetesMetadataSource } from '../../src/server/kubernetes/kubernetes-metadata-source.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { registerKubernetesMetadataSourceContract } from '../contracts/kubernetes-metadata-source.contract.js';
import { AUDIENCE, NS, REAL_SKIP, SA, realCluster, standInCluster, type ContractCluster } from '../support/contract-clusters.js';
import { captureLogs } from '../support/log-capture.js';

/*
 * The contract between the stand-in cluster (test/fakes/stand-in-issuer.ts + stand-in-kubernetes.ts) and a real
 * kube-apiserver: the same cases, through the same broker code, must give the same answers on both, first at the
 * port (test/contracts/kubernetes-metadata-source.contract.ts, through the production adapter), then end to end. The stand-in
 * keeps the rest of the suite fast; this file keeps it honest. When the real binaries are missing (outside CI) the
 * real half is skipped with the reason, and the stand-in half still runs.
 */

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

    registerKubernetesMetadataSourceContract(
      'KubernetesMetadataSource (client adapter)',
      () => cluster,
      (kubeconfig) => createKubernetesMetadataSource({ connection: { kubeconfig }, cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 }, now: Date.now }),
    );

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
