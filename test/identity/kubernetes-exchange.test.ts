import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import type { Response } from 'supertest';
import { useHarness, startHarness, SUBJECT_AUDIENCE, type Harness } from '../support/broker-harness.js';
import { startStandInKubernetes, serviceAccountReview, type DownMode, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/*
 * The exchange end to end with the Kubernetes API in the loop: a stand-in API server on loopback (reached
 * through a kubeconfig, as in production), the stand-in issuer's projected tokens naming pods on it, and the
 * broker built by the harness from configuration alone.
 */

const SERVICE_ACCOUNT = 'argo-runner';
const RELEASE_LABEL = 'example.com/release';

const DESCRIPTIONS = {
  pod_not_found: 'The pod this subject token was issued to no longer exists; a token copied out of a finished step is not accepted.',
  pod_uid_mismatch: 'A pod with this name exists, but it is not the pod the subject token was issued to (it was re-created).',
  pod_terminating: 'The pod this subject token was issued to is terminating.',
  workflow_completed: 'The Argo step this subject token was issued to has completed.',
  not_pod_bound: 'The subject token is bound to a Secret, not a pod; this broker accepts only pod-bound projected tokens.',
  kubernetes_unavailable: 'The broker cannot check this workload with the Kubernetes API right now; retry shortly.',
  no_matching_rule: 'No policy is granted to this workload identity.',
  token_review_not_authenticated:
    'The cluster\'s API server did not authenticate the subject token (it may be revoked, or its pod or service account deleted).',
  token_review_audience: 'The cluster\'s API server did not accept the subject token for this broker\'s audience.',
} as const;

const podPath = (namespace: string, name: string): string => `/api/v1/namespaces/${namespace}/pods/${name}`;
const namespacePath = (name: string): string => `/api/v1/namespaces/${name}`;

/** A pod name no other test uses, so request counts and caches are the test's own. */
function uniquePodName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

interface Workload {
  readonly podName: string;
  readonly podUid: string;
  /** A fresh projected token for the pod (a new jti each call). */
  token(): Promise<string>;
}

/** Puts a pod (and its service account) on the stand-in and returns projected tokens bound to it. */
function putWorkload(
  h: Harness,
  kube: StandInKubernetes,
  namespace: string,
  options: { labels?: Record<string, string>; issuer?: StandInIssuer; serviceAccount?: string; prefix?: string } = {},
): Workload {
  const serviceAccount = options.serviceAccount ?? SERVICE_ACCOUNT;
  kube.putServiceAccount(namespace, serviceAccount);
  const podName = uniquePodName(options.prefix ?? 'step');
  const pod = kube.putPod(namespace, podName, { serviceAccountName: serviceAccount, ...(options.labels !== undefined && { labels: options.labels }) });
  const issuer = options.issuer ?? h.issuer;
  return {
    podName,
    podUid: pod.metadata.uid,
    token: () => issuer.projectedToken({ namespace, serviceAccount, podName, podUid: pod.metadata.uid }),
  };
}

/** Projected claims for a pod that is not on the stand-in (or no longer is). */
function tokenForPod(h: Harness, namespace: string, podName: string, podUid: string = randomUUID()): Promise<string> {
  return h.issuer.projectedToken({ namespace, serviceAccount: SERVICE_ACCOUNT, podName, podUid });
}

const requestIdOf = (res: Response): string => String(res.headers['x-request-id']);
const linesOf = (h: Harness, res: Response) => h.logs.lines.filter((line) => line.requestId === requestIdOf(res));
const exchangeLineOf = (h: Harness, res: Response) => {
  const lines = linesOf(h, res).filter((line) => line.audit !== true);
  assert.equal(lines.length, 1, 'one exchange log line per request');
  return lines[0] as Record<string, unknown>;
};
const auditLinesOf = (h: Harness, res: Response) => linesOf(h, res).filter((line) => line.audit === true);

/** Asserts a 200 with one audit line, and returns the minted token's claims. */
function minted(h: Harness, res: Response): JWTPayload {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(auditLinesOf(h, res).length, 1, 'an issued token has one audit line');
  return decodeJwt(String(res.body.access_token));
}

/**
 * Asserts a 200 answered from the broker's token cache (the same workload and grant as an earlier exchange):
 * no new audit line, outcome `cached`. Returns the token's claims.
 */
function servedFromTokenCache(h: Harness, res: Response): JWTPayload {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(auditLinesOf(h, res).length, 0, 'a cached token is not issued again');
  assert.equal(exchangeLineOf(h, res).outcome, 'cached');
  return decodeJwt(String(res.body.access_token));
}

/** Asserts the exact RFC 6749 error body and that no token was minted. */
function refused(h: Harness, res: Response, status: number, error: string, reason: string, description: string): Record<string, unknown> {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.deepEqual(res.body, { error, error_description: description, reason });
  assert.equal(auditLinesOf(h, res).length, 0, 'no audit line: no token was minted');
  const line = exchangeLineOf(h, res);
  assert.equal(line.reason, reason);
  assert.equal(line.outcome, status >= 500 ? 'error' : 'rejected');
  return line;
}

const scopeOf = (claims: JWTPayload): string[] => String(claims.scope).split(' ');

let kube: StandInKubernetes;
let dir: string;
let kubeconfig: string;

before(async () => {
  kube = await startStandInKubernetes();
  dir = await mkdtemp(join(tmpdir(), 'tb-k8s-exchange-'));
  kubeconfig = await kube.writeKubeconfig(dir);
});

after(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

/** Rules over namespace labels (admin), pod labels (submitter) and requestable policies. */
function selectorRules(): BrokerConfigInput['rules'] {
  return [
    {
      name: 'team-read',
      match: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } },
      policies: ['{namespace.labels.team}-read'],
      allowedPolicies: ['*-read'],
    },
    { name: 'prod-status', match: { namespaceSelector: { matchLabels: { tier: 'prod' } } }, policies: ['status-read'] },
    {
      name: 'cost-center',
      match: { namespaceSelector: { matchExpressions: [{ key: 'cost-center', operator: 'Exists' }] } },
      policies: ['cc-{namespace.labels.cost-center}'],
      allowedPolicies: ['cc-100', 'cc-200'],
    },
    {
      name: 'payments-release',
      match: { namespaces: ['payments'], podSelector: { matchLabels: { [RELEASE_LABEL]: 'true' } } },
      requestable: ['payments-write'],
    },
    { name: 'payments-admin', match: { namespaces: ['payments'], serviceAccounts: [SERVICE_ACCOUNT] }, requestable: ['payments-admin'] },
  ];
}

describe('exchange with pod binding enforced and selector rules', () => {
  let h: Harness;

  before(async () => {
    kube.putNamespace('payments', { labels: { team: 'payments', tier: 'prod' } });
    kube.putNamespace('orders', { labels: { team: 'orders' } });
    kube.putNamespace('sandbox');
    kube.putNamespace('costs', { labels: { 'cost-center': '999' } });
    kube.putNamespace('costs-ok', { labels: { 'cost-center': '100' } });
    h = await startHarness({
      config: () => ({
        kubernetes: { kubeconfig, podBinding: 'enforce', cacheSeconds: { namespace: 60, serviceAccount: 60, pod: 10 } },
        rules: selectorRules(),
      }),
    });
  });
  after(() => h.close());

  describe('pod binding', () => {
    it('a live pod -> 200, its policies in the token', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const res = await h.exchange(await workload.token());
      const claims = minted(h, res);
      assert.deepEqual(scopeOf(claims), ['payments-read', 'status-read']);
      assert.equal(claims.pol, 'payments-read');
      assert.equal(res.body.scope, 'payments-read status-read');
      assert.deepEqual(claims.workload, { issuer: 'test-cluster', namespace: 'payments', serviceAccount: SERVICE_ACCOUNT, pod: workload.podName });
      assert.equal(kube.requestCount('GET', podPath('payments', workload.podName)), 1);
    });

    it('the pod deleted -> 400 invalid_request pod_not_found', async () => {
      const workload = putWorkload(h, kube, 'payments');
      kube.deletePod('payments', workload.podName);
      const res = await h.exchange(await workload.token());
      refused(h, res, 400, 'invalid_request', 'pod_not_found', DESCRIPTIONS.pod_not_found);
      assert.equal(kube.requestCount('GET', podPath('payments', workload.podName)), 1);
    });

    it('the pod re-created under the same name with a new UID -> pod_uid_mismatch', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const token = await workload.token();
      const recreated = kube.putPod('payments', workload.podName, { serviceAccountName: SERVICE_ACCOUNT });
      assert.notEqual(recreated.metadata.uid, workload.podUid);
      refused(h, await h.exchange(token), 400, 'invalid_request', 'pod_uid_mismatch', DESCRIPTIONS.pod_uid_mismatch);
    });

    it('the pod re-created after an exchange: refused once the cached lookup expires', async () => {
      const workload = putWorkload(h, kube, 'payments');
      minted(h, await h.exchange(await workload.token()));
      kube.putPod('payments', workload.podName, { serviceAccountName: SERVICE_ACCOUNT });
      h.clock.advance(11);
      refused(h, await h.exchange(await workload.token()), 400, 'invalid_request', 'pod_uid_mismatch', DESCRIPTIONS.pod_uid_mismatch);
    });

    it('the pod terminating (deletionTimestamp) -> pod_terminating', async () => {
      const workload = putWorkload(h, kube, 'payments');
      kube.markTerminating('payments', workload.podName);
      refused(h, await h.exchange(await workload.token()), 400, 'invalid_request', 'pod_terminating', DESCRIPTIONS.pod_terminating);
    });

    it('the Argo step completed (workflows.argoproj.io/completed=true) -> workflow_completed', async () => {
      kube.putServiceAccount('payments', SERVICE_ACCOUNT);
      const pod = kube.putArgoPod({ namespace: 'payments', workflow: uniquePodName('wf-done'), template: 'call-api', serviceAccountName: SERVICE_ACCOUNT });
      kube.markCompleted('payments', pod.metadata.name);
      const token = await tokenForPod(h, 'payments', pod.metadata.name, pod.metadata.uid);
      refused(h, await h.exchange(token), 400, 'invalid_request', 'workflow_completed', DESCRIPTIONS.workflow_completed);
    });

    it('a running Argo step (completed=false) -> 200', async () => {
      kube.putServiceAccount('payments', SERVICE_ACCOUNT);
      const pod = kube.putArgoPod({ namespace: 'payments', workflow: uniquePodName('wf-running'), serviceAccountName: SERVICE_ACCOUNT });
      const res = await h.exchange(await tokenForPod(h, 'payments', pod.metadata.name, pod.metadata.uid));
      assert.deepEqual(scopeOf(minted(h, res)), ['payments-read', 'status-read']);
    });

    it('a token bound to a Secret (kubernetes.io.secret instead of pod) -> not_pod_bound, without a pod lookup', async () => {
      const podRequests = (): number => [...kube.requests.entries()].filter(([key]) => key.includes('/pods/')).reduce((sum, [, n]) => sum + n, 0);
      const before = podRequests();
      const claims = h.issuer.projectedClaims({ namespace: 'payments', serviceAccount: SERVICE_ACCOUNT });
      const kubernetesIo = { ...(claims['kubernetes.io'] as Record<string, unknown>) };
      delete kubernetesIo.pod;
      delete kubernetesIo.node;
      kubernetesIo.secret = { name: 'argo-runner-token-x7k2p', uid: randomUUID() };
      const token = await h.issuer.sign({ ...claims, 'kubernetes.io': kubernetesIo });
      refused(h, await h.exchange(token), 400, 'invalid_request', 'not_pod_bound', DESCRIPTIONS.not_pod_bound);
      assert.equal(podRequests(), before, 'no pod was asked for');
    });
  });

  describe('the Kubernetes API unavailable', () => {
    for (const mode of ['error503', 'hang', 'reset', 'garbage'] as const satisfies readonly DownMode[]) {
      it(`${mode} -> 503 temporarily_unavailable kubernetes_unavailable, no token minted; answered once the API is back`, async () => {
        const workload = putWorkload(h, kube, 'payments');
        const token = await workload.token();
        const auditBefore = h.logs.lines.filter((line) => line.audit === true).length;
        kube.setDown(mode);
        let res: Response;
        try {
          res = await h.exchange(token);
        } finally {
          kube.setDown(false);
        }
        const line = refused(h, res, 503, 'temporarily_unavailable', 'kubernetes_unavailable', DESCRIPTIONS.kubernetes_unavailable);
        assert.equal(res.headers['retry-after'], '5');
        assert.match(String(line.detail), new RegExp(`^GET pod payments/${workload.podName}: `));
        assert.equal(h.logs.lines.filter((l) => l.audit === true).length, auditBefore, 'no audit line anywhere');
        // A reset on the pooled connection looks like one the server closed while idle: the GET goes once more, on a
        // new connection (reset too), and no more. Every other failure is final at once.
        const sentDuringOutage = mode === 'reset' ? 2 : 1;
        assert.equal(kube.requestCount('GET', podPath('payments', workload.podName)), sentDuringOutage);

        // The failure was not cached: the same token succeeds as soon as the API answers.
        const retried = await h.exchange(token);
        assert.deepEqual(scopeOf(minted(h, retried)), ['payments-read', 'status-read']);
        assert.equal(kube.requestCount('GET', podPath('payments', workload.podName)), sentDuringOutage + 1);
      });
    }
  });

  describe('lookups served from the cache', () => {
    it('a second exchange within cacheSeconds.pod sends no pod request; after it, one more', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const path = podPath('payments', workload.podName);
      const podsOk = async (): Promise<number> => {
        const text = (await h.http.get('/metrics').expect(200)).text;
        const match = /^token_broker_kubernetes_requests_total\{resource="pods",code="200"\} (\d+)$/m.exec(text);
        assert.ok(match, 'token_broker_kubernetes_requests_total{resource="pods",code="200"} is exported');
        return Number(match[1]);
      };
      const okBefore = await podsOk();

      const first = minted(h, await h.exchange(await workload.token()));
      assert.equal(kube.requestCount('GET', path), 1);
      assert.equal(await podsOk(), okBefore + 1);

      h.clock.advance(5);
      // The pod binding is checked before the token cache is consulted, so each exchange needs the pod.
      const second = servedFromTokenCache(h, await h.exchange(await workload.token()));
      assert.equal(second.jti, first.jti);
      assert.equal(kube.requestCount('GET', path), 1, 'served from the pod cache');
      assert.equal(await podsOk(), okBefore + 1);

      h.clock.advance(6);
      servedFromTokenCache(h, await h.exchange(await workload.token()));
      assert.equal(kube.requestCount('GET', path), 2, 'looked up again once cacheSeconds.pod has passed');
      assert.equal(await podsOk(), okBefore + 2);

      // A pod deleted after that is noticed at the next lookup, even though a token for it is cached.
      kube.deletePod('payments', workload.podName);
      h.clock.advance(11);
      refused(h, await h.exchange(await workload.token()), 400, 'invalid_request', 'pod_not_found', DESCRIPTIONS.pod_not_found);
      assert.equal(kube.requestCount('GET', path), 3);
    });

    it('namespace labels are cached for cacheSeconds.namespace', async () => {
      kube.putNamespace('billing', { labels: { team: 'billing' } });
      const first = putWorkload(h, kube, 'billing');
      minted(h, await h.exchange(await first.token()));
      assert.equal(kube.requestCount('GET', namespacePath('billing')), 1);
      const second = putWorkload(h, kube, 'billing');
      assert.deepEqual(scopeOf(minted(h, await h.exchange(await second.token()))), ['billing-read']);
      assert.equal(kube.requestCount('GET', namespacePath('billing')), 1);
      h.clock.advance(61);
      servedFromTokenCache(h, await h.exchange(await second.token()));
      assert.equal(kube.requestCount('GET', namespacePath('billing')), 2);
    });

    it('/metrics counts pod lookups answered 404', async () => {
      refused(h, await h.exchange(await tokenForPod(h, 'payments', uniquePodName('gone'))), 400, 'invalid_request', 'pod_not_found', DESCRIPTIONS.pod_not_found);
      const text = (await h.http.get('/metrics').expect(200)).text;
      assert.match(text, /^token_broker_kubernetes_requests_total\{resource="pods",code="404"\} [1-9]\d*$/m);
    });
  });

  describe('namespace labels and templates', () => {
    it('a namespaceSelector grants: tier=prod gives status-read, a namespace without it does not', async () => {
      const prod = putWorkload(h, kube, 'payments');
      assert.deepEqual(scopeOf(minted(h, await h.exchange(await prod.token()))), ['payments-read', 'status-read']);
      const other = putWorkload(h, kube, 'orders');
      assert.deepEqual(scopeOf(minted(h, await h.exchange(await other.token()))), ['orders-read']);
    });

    it('"{namespace.labels.team}-read" with allowedPolicies ["*-read"] grants payments-read for team=payments', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const claims = minted(h, await h.exchange(await workload.token()));
      assert.ok(scopeOf(claims).includes('payments-read'));
      assert.equal(claims.pol, 'payments-read');
    });

    for (const team of ['evil*', '{namespace}', 'pay ments']) {
      it(`a namespace labelled team=${JSON.stringify(team)} gets nothing from the template (verdict dropped)`, async () => {
        const namespace = `odd-${randomUUID().slice(0, 8)}`;
        kube.putNamespace(namespace, { labels: { team } });
        const workload = putWorkload(h, kube, namespace);
        const res = await h.exchange(await workload.token());
        const line = refused(h, res, 400, 'invalid_request', 'no_matching_rule', DESCRIPTIONS.no_matching_rule);
        const verdicts = line.verdicts as { rule: string; matched: boolean; dropped?: string[] }[];
        assert.deepEqual(
          verdicts.find((v) => v.rule === 'team-read'),
          { rule: 'team-read', matched: true, dropped: [`template "{namespace.labels.team}-read" produced "${team}-read", not a plain policy ID`] },
        );
        // Nothing about rules or labels reaches the caller.
        assert.equal(JSON.stringify(res.body).includes('team'), false);
      });
    }

    it('a label value outside the rule\'s allowedPolicies grants nothing from that rule (verdict dropped)', async () => {
      const workload = putWorkload(h, kube, 'costs');
      const res = await h.exchange(await workload.token());
      const line = refused(h, res, 400, 'invalid_request', 'no_matching_rule', DESCRIPTIONS.no_matching_rule);
      assert.deepEqual(line.verdicts, [
        { rule: 'team-read', matched: false, reason: 'namespace labels: label team required' },
        { rule: 'prod-status', matched: false, reason: 'namespace labels: label tier=prod required, found none' },
        { rule: 'cost-center', matched: true, dropped: ['"cc-999" is not in allowedPolicies [cc-100, cc-200]'] },
        { rule: 'payments-release', matched: false, reason: 'namespace "costs" matches none of [payments]' },
        { rule: 'payments-admin', matched: false, reason: 'namespace "costs" matches none of [payments]' },
      ]);
    });

    it('a label value inside allowedPolicies is granted', async () => {
      const workload = putWorkload(h, kube, 'costs-ok');
      assert.deepEqual(scopeOf(minted(h, await h.exchange(await workload.token()))), ['cc-100']);
    });
  });

  describe('pod labels cannot grant on their own', () => {
    it('a pod labelled to match a submitter-tier rule in the rule\'s namespace gets its requestable policy', async () => {
      const workload = putWorkload(h, kube, 'payments', { labels: { [RELEASE_LABEL]: 'true' } });
      const res = await h.exchange(await workload.token());
      assert.deepEqual(scopeOf(minted(h, res)), ['payments-read', 'status-read', 'payments-write']);
      assert.deepEqual(exchangeLineOf(h, res).policies, ['payments-read', 'status-read', 'payments-write']);
    });

    it('the same pod labels in another namespace get nothing from that rule', async () => {
      const workload = putWorkload(h, kube, 'orders', { labels: { [RELEASE_LABEL]: 'true' } });
      const claims = minted(h, await h.exchange(await workload.token()));
      assert.deepEqual(scopeOf(claims), ['orders-read']);
      const asked = await h.exchange(await workload.token(), { scope: 'payments-write' });
      const line = refused(
        h,
        asked,
        400,
        'invalid_target',
        'scope_not_granted',
        'The requested scope includes policies this workload is not granted: payments-write.',
      );
      assert.deepEqual(
        (line.verdicts as { rule: string }[]).find((v) => v.rule === 'payments-release'),
        { rule: 'payments-release', matched: false, reason: 'namespace "orders" matches none of [payments]' },
      );
    });

    it('the same pod labels in a namespace no rule covers: no_matching_rule', async () => {
      const workload = putWorkload(h, kube, 'sandbox', { labels: { [RELEASE_LABEL]: 'true', team: 'payments', tier: 'prod' } });
      refused(h, await h.exchange(await workload.token()), 400, 'invalid_request', 'no_matching_rule', DESCRIPTIONS.no_matching_rule);
    });

    it('a pod in the rule\'s namespace without the label cannot ask for the requestable policy', async () => {
      const workload = putWorkload(h, kube, 'payments');
      refused(
        h,
        await h.exchange(await workload.token(), { scope: 'payments-write' }),
        400,
        'invalid_target',
        'scope_not_granted',
        'The requested scope includes policies this workload is not granted: payments-write.',
      );
    });
  });

  describe('admin-tier requestable policies and scope', () => {
    it('not in the token unless asked for', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const claims = minted(h, await h.exchange(await workload.token()));
      assert.equal(scopeOf(claims).includes('payments-admin'), false);
    });

    it('scope=payments-admin -> exactly that policy', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const res = await h.exchange(await workload.token(), { scope: 'payments-admin' });
      const claims = minted(h, res);
      assert.deepEqual(scopeOf(claims), ['payments-admin']);
      assert.equal(claims.pol, 'payments-admin');
      assert.equal(res.body.scope, 'payments-admin');
    });

    it('scope with a granted and a requestable policy -> both', async () => {
      const workload = putWorkload(h, kube, 'payments');
      const claims = minted(h, await h.exchange(await workload.token(), { scope: 'payments-admin payments-read' }));
      assert.deepEqual(scopeOf(claims), ['payments-read', 'payments-admin']);
    });

    it('scope asking for a policy neither granted nor requestable -> invalid_target scope_not_granted', async () => {
      const workload = putWorkload(h, kube, 'payments');
      refused(
        h,
        await h.exchange(await workload.token(), { scope: 'payments-read payments-delete' }),
        400,
        'invalid_target',
        'scope_not_granted',
        'The requested scope includes policies this workload is not granted: payments-delete.',
      );
    });

    it('another service account in the namespace cannot ask for it', async () => {
      const workload = putWorkload(h, kube, 'payments', { serviceAccount: 'intruder' });
      refused(
        h,
        await h.exchange(await workload.token(), { scope: 'payments-admin' }),
        400,
        'invalid_target',
        'scope_not_granted',
        'The requested scope includes policies this workload is not granted: payments-admin.',
      );
    });
  });
});

describe('Argo context in the minted token', () => {
  let h: Harness;
  before(async () => {
    kube.putNamespace('ci', { labels: { team: 'ci' } });
    kube.putServiceAccount('ci', 'wf-runner');
    h = await startHarness({
      config: () => ({
        kubernetes: { kubeconfig, podBinding: 'enforce' },
        tokens: { audience: 'tyk', subject: 'argo:{namespace}:{workflow}' },
        rules: [{ name: 'ci', match: { namespaces: ['ci'] }, policies: ['ci-read'] }],
      }),
    });
  });
  after(() => h.close());

  it('sub is argo:<namespace>:<workflow label>; the workload claim and the log lines carry workflow and node', async () => {
    const workflow = uniquePodName('orders-sync');
    const pod = kube.putArgoPod({ namespace: 'ci', workflow, template: 'call-api', nodeName: `${workflow}.call-api`, serviceAccountName: 'wf-runner' });
    const token = await h.issuer.projectedToken({ namespace: 'ci', serviceAccount: 'wf-runner', podName: pod.metadata.name, podUid: pod.metadata.uid });
    const res = await h.exchange(token);
    const claims = minted(h, res);
    assert.equal(claims.sub, `argo:ci:${workflow}`);
    assert.deepEqual(claims.workload, {
      issuer: 'test-cluster',
      namespace: 'ci',
      serviceAccount: 'wf-runner',
      pod: pod.metadata.name,
      workflow,
      node: `${workflow}.call-api`,
    });
    assert.deepEqual(scopeOf(claims), ['ci-read']);
    const line = exchangeLineOf(h, res);
    assert.equal(line.workflow, workflow);
    assert.equal(line.node, `${workflow}.call-api`);
    assert.equal(line.outcome, 'issued');
    const [audit] = auditLinesOf(h, res);
    assert.equal(audit?.workflow, workflow);
    assert.equal(audit?.node, `${workflow}.call-api`);
    assert.equal(audit?.subject, 'system:serviceaccount:ci:wf-runner');
  });

  it('a pod that is not an Argo pod cannot be named by {workflow} -> missing_claim', async () => {
    const workload = putWorkload(h, kube, 'ci', { serviceAccount: 'wf-runner' });
    refused(
      h,
      await h.exchange(await workload.token()),
      400,
      'invalid_request',
      'missing_claim',
      'The broker names minted tokens with {workflow}, which the subject token does not carry.',
    );
  });
});

describe('pod binding off', () => {
  const h = useHarness({
    config: () => ({
      kubernetes: { kubeconfig, podBinding: 'off' },
      rules: [{ name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] }],
    }),
  });

  it('a deleted pod -> 200, and the pod is not even looked up', async () => {
    const podName = uniquePodName('deleted');
    const res = await h.exchange(await tokenForPod(h, 'payments', podName));
    assert.deepEqual(scopeOf(minted(h, res)), ['payments-read']);
    assert.equal(kube.requestCount('GET', podPath('payments', podName)), 0);
  });
});

describe('TokenReview verification', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      config: () => ({
        kubernetes: { kubeconfig, verification: 'tokenreview' },
        rules: [{ name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] }],
      }),
    });
  });
  after(() => {
    kube.setTokenReviewer(() => ({ authenticated: false }));
    return h.close();
  });

  it('authenticated for the broker\'s audience -> 200; the review carried the token and the issuer\'s audiences', async () => {
    const workload = putWorkload(h, kube, 'payments');
    kube.setTokenReviewer((spec) =>
      serviceAccountReview({ namespace: 'payments', serviceAccount: SERVICE_ACCOUNT, audiences: [...spec.audiences], podName: workload.podName, podUid: workload.podUid }),
    );
    const token = await workload.token();
    const reviewsBefore = kube.tokenReviews.length;
    assert.deepEqual(scopeOf(minted(h, await h.exchange(token))), ['payments-read']);
    assert.deepEqual(kube.tokenReviews.slice(reviewsBefore), [{ token, audiences: [SUBJECT_AUDIENCE] }]);
  });

  it('unauthenticated -> 400 token_review_rejected', async () => {
    const workload = putWorkload(h, kube, 'payments');
    kube.setTokenReviewer(() => ({ authenticated: false, error: '[invalid bearer token, service account token has been invalidated]' }));
    const line = refused(
      h,
      await h.exchange(await workload.token()),
      400,
      'invalid_request',
      'token_review_rejected',
      DESCRIPTIONS.token_review_not_authenticated,
    );
    assert.equal(line.detail, 'TokenReview: [invalid bearer token, service account token has been invalidated]');
  });

  it('authenticated only for other audiences -> 400 token_review_rejected', async () => {
    const workload = putWorkload(h, kube, 'payments');
    kube.setTokenReviewer(() =>
      serviceAccountReview({
        namespace: 'payments',
        serviceAccount: SERVICE_ACCOUNT,
        audiences: ['https://kubernetes.default.svc'],
        podName: workload.podName,
        podUid: workload.podUid,
      }),
    );
    const line = refused(h, await h.exchange(await workload.token()), 400, 'invalid_request', 'token_review_rejected', DESCRIPTIONS.token_review_audience);
    assert.equal(line.detail, 'TokenReview audiences: [https://kubernetes.default.svc]');
  });

  it('the TokenReview endpoint failing -> 503 kubernetes_unavailable, no token', async () => {
    const workload = putWorkload(h, kube, 'payments');
    kube.setTokenReviewer(() => {
      throw new Error('webhook authenticator down');
    });
    refused(h, await h.exchange(await workload.token()), 503, 'temporarily_unavailable', 'kubernetes_unavailable', DESCRIPTIONS.kubernetes_unavailable);
  });
});

describe('multi-cluster: each issuer\'s tokens are checked against its own cluster', () => {
  let h: Harness;
  let issuerB: StandInIssuer;
  let kubeA: StandInKubernetes;
  let kubeB: StandInKubernetes;

  before(async () => {
    kubeA = await startStandInKubernetes();
    kubeB = await startStandInKubernetes();
    const kubeconfigA = await kubeA.writeKubeconfig(dir, { fileName: 'cluster-a.yaml' });
    const kubeconfigB = await kubeB.writeKubeconfig(dir, { fileName: 'cluster-b.yaml' });
    // Issuer B shares the harness clock (read lazily: the harness does not exist yet).
    issuerB = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, now: () => h.clock.now() });
    kubeA.putNamespace('payments', { labels: { team: 'payments' } });
    kubeB.putNamespace('payments', { labels: { team: 'orders' } });
    h = await startHarness({
      config: (issuerUrl) => ({
        issuers: [
          { name: 'cluster-a', issuer: issuerUrl, audiences: [SUBJECT_AUDIENCE], kubernetes: { kubeconfig: kubeconfigA } },
          { name: 'cluster-b', issuer: issuerB.issuer, audiences: [SUBJECT_AUDIENCE], kubernetes: { kubeconfig: kubeconfigB } },
        ],
        rules: [
          { name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] },
          { name: 'team-payments', match: { namespaceSelector: { matchLabels: { team: 'payments' } } }, policies: ['team-payments'] },
        ],
      }),
    });
  });
  after(async () => {
    await h.close();
    await issuerB.close();
    await kubeA.close();
    await kubeB.close();
  });

  it('a cluster-a token is checked on cluster A only, with A\'s namespace labels', async () => {
    const workload = putWorkload(h, kubeA, 'payments');
    const claims = minted(h, await h.exchange(await workload.token()));
    assert.deepEqual(scopeOf(claims), ['payments-read', 'team-payments']);
    assert.equal((claims.workload as Record<string, unknown>).issuer, 'cluster-a');
    assert.equal(kubeA.requestCount('GET', podPath('payments', workload.podName)), 1);
    assert.equal(kubeB.requestCount('GET', podPath('payments', workload.podName)), 0);
    assert.equal(kubeB.totalRequests(), 0);
  });

  it('a cluster-b token is checked on cluster B only, with B\'s namespace labels', async () => {
    const aBefore = kubeA.totalRequests();
    const workload = putWorkload(h, kubeB, 'payments', { issuer: issuerB });
    const claims = minted(h, await h.exchange(await workload.token()));
    assert.deepEqual(scopeOf(claims), ['payments-read']);
    assert.equal((claims.workload as Record<string, unknown>).issuer, 'cluster-b');
    assert.equal(kubeB.requestCount('GET', podPath('payments', workload.podName)), 1);
    assert.equal(kubeB.requestCount('GET', namespacePath('payments')), 1);
    assert.equal(kubeA.totalRequests(), aBefore);
  });

  it('a cluster-b token naming a pod that exists only on cluster A -> pod_not_found', async () => {
    const onA = putWorkload(h, kubeA, 'payments');
    const aBefore = kubeA.requestCount('GET', podPath('payments', onA.podName));
    const token = await issuerB.projectedToken({ namespace: 'payments', serviceAccount: SERVICE_ACCOUNT, podName: onA.podName, podUid: onA.podUid });
    refused(h, await h.exchange(token), 400, 'invalid_request', 'pod_not_found', DESCRIPTIONS.pod_not_found);
    assert.equal(kubeB.requestCount('GET', podPath('payments', onA.podName)), 1);
    assert.equal(kubeA.requestCount('GET', podPath('payments', onA.podName)), aBefore);
  });

  it('cluster A down does not affect cluster B\'s tokens', async () => {
    const onA = putWorkload(h, kubeA, 'payments');
    const onB = putWorkload(h, kubeB, 'payments', { issuer: issuerB });
    kubeA.setDown('error503');
    try {
      refused(h, await h.exchange(await onA.token()), 503, 'temporarily_unavailable', 'kubernetes_unavailable', DESCRIPTIONS.kubernetes_unavailable);
      assert.deepEqual(scopeOf(minted(h, await h.exchange(await onB.token()))), ['payments-read']);
    } finally {
      kubeA.setDown(false);
    }
  });
});
