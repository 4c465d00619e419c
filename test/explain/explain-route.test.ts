import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { useHarness, PUBLIC_URL, type Harness } from '../support/broker-harness.js';
import { startStandInKubernetes, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import type { Explanation } from '../../src/server/explain/explain-decision.js';

const RULES = [
  {
    name: 'payments-ci',
    match: { issuers: ['test-cluster'], namespaces: ['payments'], serviceAccounts: ['argo-*'] },
    policies: ['payments-read', 'payments-write'],
    ttlSeconds: 300,
  },
  { name: 'audit-on-request', match: { namespaces: ['payments'] }, requestable: ['payments-audit'] },
  {
    name: 'pods-ask-ledger',
    match: { namespaces: ['payments'], podSelector: { matchLabels: { 'token-broker.io/wants': 'ledger' } } },
    requestable: ['ledger-write'],
  },
  { name: 'orders-read', match: { namespaces: ['orders'] }, policies: ['orders-read'] },
];

const JWT_SHAPED = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;

let cluster: StandInKubernetes;
let dir: string;
let kubeconfig: string;

/** An Argo pod in the stand-in cluster and a projected token bound to it. */
async function argoStep(h: Harness, options: { namespace?: string; serviceAccount?: string; labels?: Record<string, string> } = {}) {
  const namespace = options.namespace ?? 'payments';
  const workflow = `orders-sync-${randomUUID().slice(0, 5)}`;
  const serviceAccount = options.serviceAccount ?? 'argo-runner';
  const pod = cluster.putArgoPod({ namespace, workflow, template: 'call-api', serviceAccountName: serviceAccount, ...(options.labels !== undefined && { labels: options.labels }) });
  const token = await h.issuer.projectedToken({
    namespace,
    serviceAccount,
    podName: pod.metadata.name,
    podUid: pod.metadata.uid,
  });
  return { token, pod, workflow };
}

function bodyOf(res: { text: string }): Explanation {
  return JSON.parse(res.text) as Explanation;
}

before(async () => {
  cluster = await startStandInKubernetes();
  dir = await mkdtemp(join(tmpdir(), 'explain-route-'));
  kubeconfig = await cluster.writeKubeconfig(dir);
  cluster.putNamespace('payments', { labels: { team: 'payments' } });
  cluster.putNamespace('orders');
});

after(async () => {
  await cluster.close();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /v1/explain with explain.enabled', () => {
  const h = useHarness({ warmUp: true, config: () => ({ explain: { enabled: true }, kubernetes: { enabled: true, kubeconfig }, rules: RULES }) });

  it('explains the caller\'s own identity (verified, pod-bound, with its pod\'s labels), no-store, no token in the body', async () => {
    const { token, pod, workflow } = await argoStep(h, { labels: { 'token-broker.io/wants': 'ledger' } });
    const res = await h.http.post('/v1/explain').set('Authorization', `Bearer ${token}`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.pragma, 'no-cache');
    const body = bodyOf(res);
    const issuedAt = Math.floor(h.clock.now() / 1000);
    assert.deepEqual(body, {
      verification: 'verified',
      identity: {
        issuer: 'test-cluster',
        issuerUrl: h.issuer.issuer,
        subject: 'system:serviceaccount:payments:argo-runner',
        namespace: 'payments',
        serviceAccount: 'argo-runner',
        pod: pod.metadata.name,
        workflow,
        node: `${workflow}.call-api`,
        nodeName: 'node-a',
        labelSets: { namespaceLabels: false, serviceAccountLabels: false, podLabels: true, podAnnotations: true },
      },
      request: { audience: 'tyk' },
      rules: [
        { name: 'payments-ci', tier: 'admin', matched: true },
        { name: 'audit-on-request', tier: 'admin', matched: true },
        { name: 'pods-ask-ledger', tier: 'submitter', matched: true },
        { name: 'orders-read', tier: 'admin', matched: false, reason: 'namespace "payments" matches none of [orders]' },
      ],
      granted: ['payments-read', 'payments-write', 'ledger-write'],
      requestable: ['payments-audit'],
      outcome: {
        decision: 'granted',
        policies: ['payments-read', 'payments-write', 'ledger-write'],
        audience: 'tyk',
        ttlSeconds: 300,
        claims: {
          iss: PUBLIC_URL,
          sub: 'system:serviceaccount:payments:argo-runner',
          aud: 'tyk',
          iat: issuedAt,
          nbf: issuedAt,
          exp: issuedAt + 300,
          jti: '(generated at exchange)',
          pol: 'payments-read',
          scope: 'payments-read payments-write ledger-write',
          workload: {
            issuer: 'test-cluster',
            namespace: 'payments',
            serviceAccount: 'argo-runner',
            pod: pod.metadata.name,
            workflow,
            node: `${workflow}.call-api`,
          },
        },
      },
      notes: [],
    });
    assert.ok(!res.text.includes(token), 'the subject token is not echoed');
    assert.doesNotMatch(res.text, JWT_SHAPED, 'nothing JWT-shaped: no token was minted');
  });

  it('mints nothing and writes no audit record: no exchange is counted, one plain log line says who asked', async () => {
    const { token, pod } = await argoStep(h);
    const exchangeSeries = async (): Promise<string[]> =>
      (await h.http.get('/metrics').expect(200)).text.split('\n').filter((line) => line.startsWith('token_broker_exchanges_total{'));
    const seriesBefore = await exchangeSeries();
    const before = h.logs.lines.length;
    await h.http.post('/v1/explain').set('Authorization', `Bearer ${token}`).expect(200);
    const lines = h.logs.lines.slice(before);
    assert.equal(lines.filter((line) => line.audit === true).length, 0);
    assert.deepEqual(
      lines.map((line) => [line.msg, line.explain, line.namespace, line.pod, line.decision]),
      [['explain answered', true, 'payments', pod.metadata.name, 'granted']],
    );
    assert.ok(!h.logs.raw.some((raw) => raw.includes(token)), 'the subject token is never logged');
    assert.deepEqual(await exchangeSeries(), seriesBefore);
  });

  it('the RFC 8693 form works too, and scope and audience are explained as an exchange would decide them', async () => {
    const { token } = await argoStep(h);
    const form = { grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: token };
    const narrowed = bodyOf(await h.http.post('/v1/explain').type('form').send({ ...form, scope: 'payments-audit payments-read', audience: 'tyk-internal' }).expect(200));
    assert.deepEqual(narrowed.request, { scope: ['payments-audit', 'payments-read'], audience: 'tyk-internal' });
    assert.deepEqual(
      narrowed.outcome.decision === 'granted' && [narrowed.outcome.policies, narrowed.outcome.claims.aud],
      [['payments-read', 'payments-audit'], 'tyk-internal'],
    );

    const refused = bodyOf(await h.http.post('/v1/explain').type('form').send({ ...form, scope: 'orders-read' }).expect(200));
    assert.deepEqual(refused.outcome, {
      decision: 'denied',
      reason: 'scope_not_granted',
      description: 'The requested scope includes policies this workload is not granted: orders-read.',
    });
    // The exchange with the same request is refused with the same reason.
    const exchanged = await h.exchange(token, { scope: 'orders-read' });
    assert.equal(exchanged.body.reason, 'scope_not_granted');
  });

  it('explains only the caller: parameters naming another workload are ignored, another token gets its own answer', async () => {
    const payments = await argoStep(h);
    const asked = bodyOf(
      await h.http
        .post('/v1/explain')
        .set('Authorization', `Bearer ${payments.token}`)
        .type('form')
        .send({ namespace: 'orders', serviceAccount: 'someone-else', subject: 'system:serviceaccount:orders:x' })
        .expect(200),
    );
    assert.deepEqual([asked.identity.namespace, asked.identity.serviceAccount], ['payments', 'argo-runner']);

    const orders = await argoStep(h, { namespace: 'orders', serviceAccount: 'sync' });
    const other = bodyOf(await h.http.post('/v1/explain').set('Authorization', `Bearer ${orders.token}`).expect(200));
    assert.deepEqual([other.identity.namespace, other.identity.serviceAccount, other.granted], ['orders', 'sync', ['orders-read']]);
  });

  it('a token /token refuses gets the same refusal, status and body, from /v1/explain', async () => {
    const deleted = await argoStep(h);
    cluster.deletePod('payments', deleted.pod.metadata.name);
    const completed = await argoStep(h);
    cluster.markCompleted('payments', completed.pod.metadata.name);
    const tokens: [string, string, string][] = [
      ['garbage', 'not.a.token', 'malformed_token'],
      ['expired', await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) }), 'expired'],
      ['another audience', await h.issuer.projectedToken({ audience: 'kubernetes' }), 'audience_mismatch'],
      ['a signature by no trusted key', (await h.issuer.projectedToken()).replace(/\.[^.]+$/, '.c2lnbmF0dXJl'), 'bad_signature'],
      ['deleted pod', deleted.token, 'pod_not_found'],
      ['completed step', completed.token, 'workflow_completed'],
    ];
    for (const [label, token, reason] of tokens) {
      const viaToken = await h.http.post('/token').set('Authorization', `Bearer ${token}`);
      const viaExplain = await h.http.post('/v1/explain').set('Authorization', `Bearer ${token}`);
      assert.equal(viaExplain.status, viaToken.status, label);
      assert.equal(viaExplain.body.reason, reason, label);
      assert.deepEqual(viaExplain.body, viaToken.body, label);
      assert.equal(viaExplain.headers['cache-control'], 'no-store', label);
    }
  });

  it('no subject token, or a JSON body: the request errors of /token, through the one serializer', async () => {
    const missing = await h.http.post('/v1/explain');
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, {
      error: 'invalid_request',
      error_description: 'The "grant_type" parameter is required.',
      reason: 'invalid_request',
    });
    const json = await h.http.post('/v1/explain').send({ subject_token: 'x' });
    assert.equal(json.status, 400);
    assert.deepEqual(json.body, {
      error: 'invalid_request',
      error_description: 'The request body must be application/x-www-form-urlencoded (RFC 8693).',
      reason: 'unsupported_media_type',
    });
  });

  it('only POST: GET /v1/explain is an unknown endpoint', async () => {
    const res = await h.http.get('/v1/explain');
    assert.equal(res.status, 404);
    assert.equal(res.body.reason, 'not_found');
  });
});

describe('POST /v1/explain without explain.enabled', () => {
  const h = useHarness({ warmUp: true });

  it('does not exist: 404 not_found, even for a valid subject token', async () => {
    const res = await h.http.post('/v1/explain').set('Authorization', `Bearer ${await h.issuer.projectedToken()}`);
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { error: 'invalid_request', error_description: 'No such endpoint.', reason: 'not_found' });
  });
});
