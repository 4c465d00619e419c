import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { SignJWT, decodeJwt } from 'jose';
import supertest from 'supertest';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';
import { runDoctor } from '../../src/tools/doctor/run-doctor.js';
import { permissionName, requiredKubernetesPermissions } from '../../src/server/kubernetes/kubernetes-permissions.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { captureLogs } from '../support/log-capture.js';
import { realKubernetesUnavailableReason, startRealKubernetes, type CreatedObject, type RealKubernetes } from '../support/real-kubernetes.js';

/*
 * The broker against a real kube-apiserver v1.35 and etcd on loopback (test/support/real-kubernetes.ts): real
 * bound tokens from the TokenRequest API, real discovery and JWKS over TLS with the cluster CA as caFile, real
 * pods and their status subresource, real TokenReview, real RBAC. The broker's credential is a service account
 * holding exactly deploy/kubernetes/base/rbac.yaml, reached through a kubeconfig, as in production.
 */

const SKIP = realKubernetesUnavailableReason() ?? false;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AUDIENCE = 'tyk-token-broker';
const NAMESPACE = 'payments';
const RUNNER = 'argo-workflow-runner';
const ARGO_COMPLETED = 'workflows.argoproj.io/completed';

interface ExchangeAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

interface RunningBroker {
  exchange(subjectToken: string, extra?: Record<string, string>): Promise<ExchangeAnswer>;
  /** Moves the broker's clock (not the cluster's) forward: caches expire, tokens stay valid for the API server. */
  advance(seconds: number): void;
  readonly broker: Broker;
  close(): Promise<void>;
}

/** The granted policies of a successful exchange, or the refusal's status, error and reason. */
function outcome(answer: ExchangeAnswer): { status: number; policies?: string[]; error?: unknown; reason?: unknown } {
  if (answer.status === 200) return { status: 200, policies: String(decodeJwt(String(answer.body.access_token)).scope).split(' ').sort() };
  assert.equal(answer.body.access_token, undefined, 'a refusal carries no token');
  return { status: answer.status, error: answer.body.error, reason: answer.body.reason };
}

describe('the broker against a real kube-apiserver and etcd', { skip: SKIP, timeout: 600_000 }, () => {
  let cluster: RealKubernetes;
  let brokerKubeconfig: string;
  const brokers: RunningBroker[] = [];

  before(async () => {
    cluster = await startRealKubernetes();
    await cluster.createNamespace(NAMESPACE, { team: 'payments', environment: 'production' });
    await cluster.createServiceAccount(NAMESPACE, RUNNER, { 'token-broker.io/enabled': 'true' });
    brokerKubeconfig = await cluster.brokerKubeconfig();
  });

  after(async () => {
    for (const running of brokers) await running.close();
    await cluster?.close();
  });

  function configFor(kubernetes: Record<string, unknown>, kubeconfig = brokerKubeconfig): BrokerConfigInput {
    return {
      server: { publicUrl: 'https://token-broker.test' },
      // As a user configures a cluster with a private CA: the issuer URL, its CA bundle, nothing else. Discovery
      // finds the JWKS at https://127.0.0.1:PORT/openid/v1/jwks, on the issuer's origin.
      issuers: [{ name: 'real-cluster', issuer: cluster.issuer, audiences: [AUDIENCE], kind: 'kubernetes', caFile: cluster.caFile }],
      signing: { algorithm: 'ES256', keysDir: '/unused/in/tests' },
      tokens: { audience: 'tyk' },
      kubernetes: { kubeconfig, podBinding: 'enforce', ...kubernetes },
      rules: [
        { name: 'runner-by-name', match: { issuers: ['real-cluster'], namespaces: [NAMESPACE], serviceAccounts: [RUNNER] }, policies: ['payments-read'] },
        {
          name: 'team-by-labels',
          match: { namespaceSelector: { matchLabels: { environment: 'production' } }, serviceAccountSelector: { matchLabels: { 'token-broker.io/enabled': 'true' } } },
          policies: ['{namespace.labels.team}-write'],
          allowedPolicies: ['*-write'],
        },
        { name: 'ledger-by-pod-label', match: { namespaces: [NAMESPACE], serviceAccounts: [RUNNER], podSelector: { matchLabels: { 'token-broker.io/wants': 'ledger' } } }, requestable: ['ledger-write'] },
      ],
    };
  }

  async function startBroker(kubernetes: Record<string, unknown> = {}, kubeconfig?: string): Promise<RunningBroker> {
    const validation = validateConfig(configFor(kubernetes, kubeconfig));
    if (!validation.ok) throw new Error(`config invalid: ${JSON.stringify(validation.problems)}`);
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    const logs = captureLogs();
    const broker = createBroker(validation.config, { logger: logs.logger, signingKeys: staticSigningKeySet([await generateSigningKey('ES256', now())]), now });
    const http = supertest(broker.app);
    const running: RunningBroker = {
      broker,
      async exchange(subjectToken, extra = {}) {
        const response = await http.post('/token').type('form').send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken, ...extra });
        return { status: response.status, body: response.body as Record<string, unknown> };
      },
      advance(seconds) {
        offsetMs += seconds * 1000;
      },
      close: () => broker.close(),
    };
    brokers.push(running);
    return running;
  }

  let podCounter = 0;
  async function pod(labels: Record<string, string> = {}, finalizers?: string[]): Promise<CreatedObject & { token: () => Promise<string> }> {
    podCounter += 1;
    const created = await cluster.createPod(NAMESPACE, `step-${podCounter}`, { serviceAccountName: RUNNER, labels, ...(finalizers !== undefined ? { finalizers } : {}) });
    return { ...created, token: () => cluster.requestToken(NAMESPACE, RUNNER, { audience: AUDIENCE, pod: created }) };
  }

  async function deletePod(name: string): Promise<void> {
    const answer = await cluster.request('DELETE', `/api/v1/namespaces/${NAMESPACE}/pods/${name}?gracePeriodSeconds=0`);
    assert.ok(answer.status === 200 || answer.status === 202, JSON.stringify(answer.body));
  }

  it('a real bound token exchanges; rules read the namespace, service-account and pod labels from the API', async () => {
    const broker = await startBroker();
    const plain = await pod();
    assert.deepEqual(outcome(await broker.exchange(await plain.token())), { status: 200, policies: ['payments-read', 'payments-write'] });

    const ledger = await pod({ 'token-broker.io/wants': 'ledger' });
    const token = await ledger.token();
    assert.deepEqual(outcome(await broker.exchange(token, { scope: 'payments-read ledger-write' })), { status: 200, policies: ['ledger-write', 'payments-read'] });
    // The pod label decides what may be requested: the other pod may not ask for ledger-write.
    assert.deepEqual(outcome(await broker.exchange(await plain.token(), { scope: 'ledger-write' })), { status: 400, error: 'invalid_target', reason: 'scope_not_granted' });

    const claims = decodeJwt(token);
    assert.equal(claims.iss, cluster.issuer);
    assert.deepEqual((claims['kubernetes.io'] as { pod: unknown }).pod, { name: ledger.name, uid: ledger.uid });
  });

  it('pod deleted: pod_not_found; re-created under the same name: pod_uid_mismatch', async () => {
    const broker = await startBroker({ cacheSeconds: { namespace: 60, serviceAccount: 60, pod: 0 } });
    const step = await pod();
    const token = await step.token();
    assert.equal((await broker.exchange(token)).status, 200);
    await deletePod(step.name);
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 400, error: 'invalid_request', reason: 'pod_not_found' });
    const again = await cluster.createPod(NAMESPACE, step.name, { serviceAccountName: RUNNER });
    assert.notEqual(again.uid, step.uid);
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 400, error: 'invalid_request', reason: 'pod_uid_mismatch' });
  });

  it('service account deleted: service_account_not_found; re-created under the same name: service_account_uid_mismatch (jwks verification)', async () => {
    const broker = await startBroker({ cacheSeconds: { namespace: 60, serviceAccount: 0, pod: 0 } });
    const name = 'argo-short-lived';
    const labels = { 'token-broker.io/enabled': 'true' };
    await cluster.createServiceAccount(NAMESPACE, name, labels);
    const step = await cluster.createPod(NAMESPACE, 'short-lived-step', { serviceAccountName: name });
    const token = await cluster.requestToken(NAMESPACE, name, { audience: AUDIENCE, pod: step });
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 200, policies: ['payments-write'] });
    const deleted = await cluster.request('DELETE', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${name}`);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 400, error: 'invalid_request', reason: 'service_account_not_found' });
    // Re-created with the same labels: a rule on them would match, but it is not the identity the token names.
    await cluster.createServiceAccount(NAMESPACE, name, labels);
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 400, error: 'invalid_request', reason: 'service_account_uid_mismatch' });
    // What the API server itself says of that token: it no longer authenticates it.
    const review = await cluster.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [AUDIENCE] } });
    assert.notEqual((review.body.status as { authenticated?: boolean }).authenticated, true);
  });

  it('a finalizer holds a deleted pod: pod_terminating', async () => {
    const broker = await startBroker();
    const step = await pod({}, ['token-broker.io/test-hold']);
    const token = await step.token();
    await deletePod(step.name);
    const held = await cluster.request('GET', `/api/v1/namespaces/${NAMESPACE}/pods/${step.name}`);
    assert.equal(typeof (held.body.metadata as { deletionTimestamp?: unknown }).deletionTimestamp, 'string', 'the API server keeps the pod, terminating');
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 400, error: 'invalid_request', reason: 'pod_terminating' });
    await cluster.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/pods/${step.name}`, { metadata: { finalizers: null } });
  });

  it('phase Succeeded through the status subresource: pod_finished; Argo\'s completed label: workflow_completed', async () => {
    const broker = await startBroker();
    const finished = await pod();
    const finishedToken = await finished.token();
    const patched = await cluster.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/pods/${finished.name}/status`, { status: { phase: 'Succeeded' } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(outcome(await broker.exchange(finishedToken)), { status: 400, error: 'invalid_request', reason: 'pod_finished' });

    const completed = await pod({ 'workflows.argoproj.io/workflow': 'orders-sync-x7k2p' });
    const completedToken = await completed.token();
    await cluster.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/pods/${completed.name}`, { metadata: { labels: { [ARGO_COMPLETED]: 'true' } } });
    assert.deepEqual(outcome(await broker.exchange(completedToken)), { status: 400, error: 'invalid_request', reason: 'workflow_completed' });
  });

  it('a token for another audience is refused: audience_mismatch', async () => {
    const broker = await startBroker();
    const step = await pod();
    const token = await cluster.requestToken(NAMESPACE, RUNNER, { audience: 'some-other-service', pod: step });
    assert.deepEqual(outcome(await broker.exchange(token)), { status: 400, error: 'invalid_request', reason: 'audience_mismatch' });
  });

  it('a legacy Secret-based token, which the API server itself still authenticates, is refused: legacy_token', async () => {
    // No controller-manager here to fill the Secret, so the test does what its token controller does: signs the
    // legacy claims with the cluster's service-account key and stores the token in the Secret.
    const serviceAccount = await cluster.request('GET', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${RUNNER}`);
    const uid = String((serviceAccount.body.metadata as { uid: string }).uid);
    const signingKey = createPrivateKey(readFileSync(join(cluster.dir, 'sa.key')));
    // The key ID the API server publishes for that key (and puts in the tokens it signs).
    const jwks = await cluster.request('GET', '/openid/v1/jwks');
    const kid = String((jwks.body.keys as { kid: string }[])[0]?.kid);
    const legacy = await new SignJWT({
      'kubernetes.io/serviceaccount/namespace': NAMESPACE,
      'kubernetes.io/serviceaccount/secret.name': 'runner-legacy-token',
      'kubernetes.io/serviceaccount/service-account.name': RUNNER,
      'kubernetes.io/serviceaccount/service-account.uid': uid,
    })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer('kubernetes/serviceaccount')
      .setSubject(`system:serviceaccount:${NAMESPACE}:${RUNNER}`)
      .sign(signingKey);
    const secret = await cluster.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: { name: 'runner-legacy-token', annotations: { 'kubernetes.io/service-account.name': RUNNER, 'kubernetes.io/service-account.uid': uid } },
      data: { token: Buffer.from(legacy).toString('base64') },
    });
    assert.equal(secret.status, 201, JSON.stringify(secret.body));
    const review = await cluster.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: legacy } });
    assert.equal((review.body.status as { authenticated?: boolean }).authenticated, true, `the API server accepts it: it is a real legacy token (${JSON.stringify(review.body.status)})`);

    const broker = await startBroker();
    assert.deepEqual(outcome(await broker.exchange(legacy)), { status: 400, error: 'invalid_request', reason: 'legacy_token' });
  });

  it('verification: tokenreview: a live pod\'s token exchanges; with pod binding, a deleted pod\'s token does not', async () => {
    const broker = await startBroker({ verification: 'tokenreview' });
    const live = await pod();
    assert.deepEqual(outcome(await broker.exchange(await live.token())), { status: 200, policies: ['payments-read', 'payments-write'] });
    const gone = await pod();
    const goneToken = await gone.token();
    await deletePod(gone.name);
    const refused = outcome(await broker.exchange(goneToken));
    // The API server refuses a review of a deleted pod's token that it has not reviewed (and cached) before; pod
    // binding refuses it either way. Which one answers first is a race the broker runs in parallel.
    assert.equal(refused.status, 400);
    assert.ok(refused.reason === 'pod_not_found' || refused.reason === 'token_review_rejected', String(refused.reason));

    const reviewOnly = await startBroker({ verification: 'tokenreview', podBinding: 'off' });
    const another = await pod();
    const anotherToken = await another.token();
    await deletePod(another.name);
    assert.deepEqual(outcome(await reviewOnly.exchange(anotherToken)), { status: 400, error: 'invalid_request', reason: 'token_review_rejected' });
  });

  it('TokenReview does not replace pod binding: the API server authenticates tokens of Succeeded and terminating pods, the broker refuses them', async () => {
    const review = async (token: string) =>
      (await cluster.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [AUDIENCE] } })).body
        .status as { authenticated?: boolean };
    const broker = await startBroker({ verification: 'tokenreview' });
    const finished = await pod();
    const finishedToken = await finished.token();
    await cluster.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/pods/${finished.name}/status`, { status: { phase: 'Succeeded' } });
    const terminating = await pod({}, ['token-broker.io/test-hold']);
    const terminatingToken = await terminating.token();
    await deletePod(terminating.name);
    try {
      assert.equal((await review(finishedToken)).authenticated, true);
      assert.equal((await review(terminatingToken)).authenticated, true);
      assert.deepEqual(outcome(await broker.exchange(finishedToken)), { status: 400, error: 'invalid_request', reason: 'pod_finished' });
      assert.deepEqual(outcome(await broker.exchange(terminatingToken)), { status: 400, error: 'invalid_request', reason: 'pod_terminating' });
    } finally {
      await cluster.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/pods/${terminating.name}`, { metadata: { finalizers: null } });
    }
  });

  it('labels changed in the cluster: the rules follow once the namespace cache lifetime (60 s) has passed', async () => {
    await cluster.createNamespace('ledger', { team: 'ledger', environment: 'production' });
    await cluster.createServiceAccount('ledger', RUNNER, { 'token-broker.io/enabled': 'true' });
    const step = await cluster.createPod('ledger', 'ledger-step', { serviceAccountName: RUNNER });
    const broker = await startBroker();
    const token = () => cluster.requestToken('ledger', RUNNER, { audience: AUDIENCE, pod: step });
    assert.deepEqual(outcome(await broker.exchange(await token())), { status: 200, policies: ['ledger-write'] });

    await cluster.request('PATCH', '/api/v1/namespaces/ledger', { metadata: { labels: { team: 'treasury' } } });
    broker.advance(30);
    assert.deepEqual(outcome(await broker.exchange(await token())), { status: 200, policies: ['ledger-write'] }, 'within the lifetime: the cached labels');
    broker.advance(31);
    assert.deepEqual(outcome(await broker.exchange(await token())), { status: 200, policies: ['treasury-write'] }, 'after it: the new labels');

    await cluster.request('PATCH', '/api/v1/namespaces/ledger', { metadata: { labels: { environment: null } } });
    broker.advance(61);
    assert.deepEqual(outcome(await broker.exchange(await token())), { status: 400, error: 'invalid_request', reason: 'no_matching_rule' });
  });

  it('the API server stopped: 503 kubernetes_unavailable and no token; back: exchanges again', async () => {
    const broker = await startBroker();
    const step = await pod();
    const token = await step.token();
    assert.equal((await broker.exchange(token)).status, 200);
    await cluster.stopApiServer();
    try {
      broker.advance(11); // past the pod cache lifetime (10 s): the pod must be looked up again
      const down = await broker.exchange(token);
      assert.deepEqual(outcome(down), { status: 503, error: 'temporarily_unavailable', reason: 'kubernetes_unavailable' });
    } finally {
      await cluster.startApiServer();
    }
    broker.advance(11);
    assert.equal((await broker.exchange(token)).status, 200);
  });

  it('doctor: discovery and JWKS of the real issuer over TLS with caFile, and the broker\'s permissions (SelfSubjectAccessReview)', async () => {
    const validation = validateConfig(configFor({ verification: 'tokenreview' }));
    assert.ok(validation.ok);
    const checks = await runDoctor(validation.config);
    const issuerChecks = checks.filter((result) => result.name.startsWith('issuer'));
    assert.ok(issuerChecks.length > 0, JSON.stringify(checks));
    for (const result of issuerChecks) assert.equal(result.status, 'OK', `${result.name}: ${result.message}`);
    assert.deepEqual(
      checks.filter((result) => result.name.startsWith('kubernetes')),
      [{ status: 'OK', name: 'kubernetes real-cluster', message: `${brokerKubeconfig} may get pods, get serviceaccounts, get namespaces, create tokenreviews.authentication.k8s.io in every namespace` }],
    );
  });

  it('the shipped ClusterRole is exactly enough: without any one of its permissions doctor names it and exchanges fail with 500 kubernetes_forbidden', async () => {
    const rbac = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/base/rbac.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] });
    const shipped = rbac.find((object) => object.kind === 'ClusterRole')?.rules ?? [];
    const granted = shipped.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.flatMap((resource) => rule.verbs.map((verb) => ({ group, resource, verb })))));
    // What a configuration using every feature needs (pod binding, TokenReview, namespace, service-account and pod
    // rules): the shipped role must grant exactly that, each proven necessary below.
    const validation = validateConfig(configFor({ verification: 'tokenreview' }));
    assert.ok(validation.ok);
    const kubernetesSettings = validation.config.kubernetes;
    assert.ok(kubernetesSettings !== undefined);
    const required = requiredKubernetesPermissions(kubernetesSettings, compileRules(validation.config.rules).needs);
    const key = (p: { group: string; resource: string; verb: string }) => `${p.verb} ${p.resource} ${p.group}`;
    assert.deepEqual(granted.map(key).sort(), required.map(key).sort());

    for (const missing of granted) {
      const name = `tb-without-${missing.verb}-${missing.resource}`;
      const rules = granted.filter((p) => p !== missing).map((p) => ({ apiGroups: [p.group], resources: [p.resource], verbs: [p.verb] }));
      const kubeconfig = await cluster.kubeconfigWithRules(name, rules);
      const permission = permissionName({ verb: missing.verb as 'get' | 'create', resource: missing.resource as 'pods', group: missing.group as '' });

      const partial = validateConfig(configFor({ verification: 'tokenreview' }, kubeconfig));
      assert.ok(partial.ok);
      const doctor = (await runDoctor(partial.config)).filter((result) => result.name.startsWith('kubernetes'));
      assert.equal(doctor.length, 1);
      assert.equal(doctor[0]?.status, 'FAIL', permission);
      assert.match(doctor[0]?.message ?? '', new RegExp(`may not ${permission.replace(/\./g, '\\.')} \\(for `), permission);

      const broker = await startBroker({ verification: 'tokenreview' }, kubeconfig);
      const step = await pod();
      assert.deepEqual(outcome(await broker.exchange(await step.token())), { status: 500, error: 'server_error', reason: 'kubernetes_forbidden' }, permission);
    }
  });

  it('the token the broker sends to the API server is never in a refusal', async () => {
    const broker = await startBroker();
    const step = await pod();
    const token = await step.token();
    await deletePod(step.name);
    const answer = await broker.exchange(token);
    const credential = readFileSync(brokerKubeconfig, 'utf8');
    const brokerToken = /"token":"([^"]+)"/.exec(credential)?.[1] ?? '';
    assert.ok(brokerToken.length > 20);
    for (const secret of [token, brokerToken]) assert.equal(JSON.stringify(answer.body).includes(secret), false);
  });
});
