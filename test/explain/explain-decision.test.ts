import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { explainDecision, EXPLAINED_JTI, type ExplainInput } from '../../src/server/explain/explain-decision.js';
import type { BrokerConfig, BrokerConfigInput } from '../../src/server/config/schema.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import { PAYMENTS_RUNNER_POD } from '../support/workload-identities.js';

const NOW = 1_767_225_600;
const PUBLIC_URL = 'https://token-broker.test';

/** A valid configuration with defaults filled, so the tests follow the schema as it grows. */
function config(overrides: Partial<BrokerConfigInput> = {}): BrokerConfig {
  const result = validateConfig(
    {
      server: { publicUrl: PUBLIC_URL },
      issuers: [
        { name: 'cluster-a', issuer: 'https://cluster-a.example', audiences: ['tyk-token-broker'], kubernetes: { enabled: true } },
      ],
      tokens: { audience: 'tyk', allowedAudiences: ['tyk', 'tyk-internal'] },
      rules: [
        { name: 'payments-ci', match: { namespaces: ['payments'], serviceAccounts: ['argo-*'] }, policies: ['payments-read', 'payments-write'], ttlSeconds: 300 },
        { name: 'audit-on-request', match: { namespaces: ['payments'] }, requestable: ['payments-audit'] },
        {
          name: 'team-read',
          match: { namespaceSelector: { matchLabels: { environment: 'production' } } },
          policies: ['{namespace.labels.team}-read'],
          allowedPolicies: ['*-read'],
        },
        {
          name: 'pods-may-ask-write',
          match: { namespaces: ['payments'], podSelector: { matchLabels: { 'token-broker.io/wants': 'ledger' } } },
          requestable: ['ledger-write'],
        },
        { name: 'orders-only', match: { namespaces: ['orders'] }, policies: ['orders-read'] },
      ],
      ...overrides,
    },
    { requireKeysDir: false },
  );
  if (!result.ok) throw new Error(`test config invalid: ${JSON.stringify(result.problems)}`);
  return result.config;
}

function identity(overrides: Partial<WorkloadIdentity> = {}): WorkloadIdentity {
  return {
    ...PAYMENTS_RUNNER_POD,
    nodeName: 'node-a',
    claims: { sub: 'system:serviceaccount:payments:argo-runner' },
    cluster: {
      namespaceLabels: { team: 'payments' },
      podLabels: { 'workflows.argoproj.io/workflow': 'orders-sync-x7k2p' },
      podAnnotations: { 'workflows.argoproj.io/node-name': 'orders-sync-x7k2p.call-api' },
    },
    ...overrides,
  };
}

function explain(overrides: Partial<ExplainInput> = {}, cfg: BrokerConfig = config()) {
  return explainDecision({ config: cfg, rules: compileRules(cfg.rules), identity: identity(), nowSeconds: NOW, verification: 'verified', ...overrides });
}

describe('explainDecision: the whole explanation', () => {
  it('a granted exchange: identity, every rule with its tier and first failed condition, policies, the claims', () => {
    assert.deepEqual(explain(), {
      verification: 'verified',
      identity: {
        issuer: 'cluster-a',
        issuerUrl: 'https://cluster-a.example',
        subject: 'system:serviceaccount:payments:argo-runner',
        namespace: 'payments',
        serviceAccount: 'argo-runner',
        pod: 'orders-sync-x7k2p-call-api-3149217812',
        workflow: 'orders-sync-x7k2p',
        node: 'orders-sync-x7k2p.call-api',
        nodeName: 'node-a',
        labelSets: { namespaceLabels: true, serviceAccountLabels: false, podLabels: true, podAnnotations: true },
      },
      request: { audience: 'tyk' },
      rules: [
        { name: 'payments-ci', tier: 'admin', matched: true },
        { name: 'audit-on-request', tier: 'admin', matched: true },
        { name: 'team-read', tier: 'admin', matched: false, reason: 'namespace labels: label environment=production required, found none' },
        { name: 'pods-may-ask-write', tier: 'submitter', matched: false, reason: 'pod labels: label token-broker.io/wants=ledger required, found none' },
        { name: 'orders-only', tier: 'admin', matched: false, reason: 'namespace "payments" matches none of [orders]' },
      ],
      granted: ['payments-read', 'payments-write'],
      requestable: ['payments-audit'],
      outcome: {
        decision: 'granted',
        policies: ['payments-read', 'payments-write'],
        audience: 'tyk',
        ttlSeconds: 300,
        claims: {
          iss: PUBLIC_URL,
          sub: 'system:serviceaccount:payments:argo-runner',
          aud: 'tyk',
          iat: NOW,
          nbf: NOW,
          exp: NOW + 300,
          jti: EXPLAINED_JTI,
          pol: 'payments-read',
          scope: 'payments-read payments-write',
          workload: {
            issuer: 'cluster-a',
            namespace: 'payments',
            serviceAccount: 'argo-runner',
            pod: 'orders-sync-x7k2p-call-api-3149217812',
            workflow: 'orders-sync-x7k2p',
            node: 'orders-sync-x7k2p.call-api',
          },
        },
      },
      notes: [],
    });
    assert.equal(EXPLAINED_JTI, '(generated at exchange)');
  });

  it('is pure: the same input gives the same explanation, and the identity is not changed', () => {
    const input = identity();
    const frozen = structuredClone(input);
    assert.deepEqual(explain({ identity: input }), explain({ identity: input }));
    assert.deepEqual(input, frozen);
  });

  it('never carries the subject token\'s raw claims', () => {
    const result = explain({ identity: identity({ claims: { sub: 'system:serviceaccount:payments:argo-runner', secretish: 'raw-claim-value' } }) });
    assert.doesNotMatch(JSON.stringify(result), /raw-claim-value/);
  });

  it('notes are passed through, and labelSets follow what was looked up', () => {
    const result = explain({ identity: identity({ cluster: undefined }), verification: 'identity fixture', notes: ['from a fixture'] });
    assert.equal(result.verification, 'identity fixture');
    assert.deepEqual(result.notes, ['from a fixture']);
    assert.deepEqual(result.identity.labelSets, { namespaceLabels: false, serviceAccountLabels: false, podLabels: false, podAnnotations: false });
    assert.equal(result.identity.workflow, undefined);
    assert.equal(result.rules.find((r) => r.name === 'team-read')?.reason, 'namespace labels are not known (no Kubernetes API lookup for this issuer, or an offline identity without them)');
  });
});

describe('explainDecision: outcomes, in the order an exchange decides', () => {
  const cases: readonly {
    name: string;
    input?: Partial<ExplainInput>;
    identity?: Partial<WorkloadIdentity>;
    config?: Partial<BrokerConfigInput>;
    outcome: Record<string, unknown>;
    request?: Record<string, unknown>;
  }[] = [
    {
      name: 'no rule grants anything: no_matching_rule',
      identity: { namespace: 'billing', subject: 'system:serviceaccount:billing:argo-runner' },
      outcome: { decision: 'denied', reason: 'no_matching_rule', description: 'No policy is granted to this workload identity.' },
    },
    {
      name: 'a scope narrows to a granted policy',
      input: { scope: ['payments-write'] },
      outcome: { decision: 'granted', policies: ['payments-write'], audience: 'tyk', ttlSeconds: 300 },
      request: { scope: ['payments-write'], audience: 'tyk' },
    },
    {
      name: 'a scope may name a requestable policy of an admin-tier rule',
      input: { scope: ['payments-audit', 'payments-read'] },
      outcome: { decision: 'granted', policies: ['payments-read', 'payments-audit'], audience: 'tyk', ttlSeconds: 300 },
    },
    {
      name: 'a scope naming a policy not granted: scope_not_granted',
      input: { scope: ['payments-read', 'orders-read'] },
      outcome: {
        decision: 'denied',
        reason: 'scope_not_granted',
        description: 'The requested scope includes policies this workload is not granted: orders-read.',
      },
    },
    {
      name: 'another allowed audience',
      input: { audience: 'tyk-internal' },
      outcome: { decision: 'granted', policies: ['payments-read', 'payments-write'], audience: 'tyk-internal', ttlSeconds: 300 },
      request: { audience: 'tyk-internal' },
    },
    {
      name: 'an audience not allowed: audience_not_allowed',
      input: { audience: 'billing' },
      outcome: { decision: 'denied', reason: 'audience_not_allowed', description: 'The broker does not issue tokens for audience "billing".' },
    },
    {
      name: 'a bad scope is reported before a bad audience, as the exchange checks them',
      input: { scope: ['orders-read'], audience: 'billing' },
      outcome: {
        decision: 'denied',
        reason: 'scope_not_granted',
        description: 'The requested scope includes policies this workload is not granted: orders-read.',
      },
    },
    {
      name: 'a sub template variable the identity lacks: missing_claim',
      identity: { podName: undefined, podUid: undefined },
      config: { tokens: { subject: '{namespace}:{pod}' } },
      outcome: {
        decision: 'denied',
        reason: 'missing_claim',
        description: 'The broker names minted tokens with {pod}, which the subject token does not carry.',
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = explain({ identity: identity(c.identity), ...c.input }, config(c.config));
      const { claims: _claims, ...outcome } = result.outcome as unknown as Record<string, unknown>;
      assert.deepEqual(outcome, c.outcome);
      if (c.request !== undefined) assert.deepEqual(result.request, c.request);
    });
  }

  it('the granted claims follow tokens.subject, the policy and scope claims, and the TTL', () => {
    const result = explain(
      { audience: 'tyk-internal' },
      config({ tokens: { audience: 'tyk', allowedAudiences: ['tyk', 'tyk-internal'], subject: '{issuer}:{namespace}:{workflow}', policyClaim: 'policy', scopeClaim: 'policies' } }),
    );
    assert.equal(result.outcome.decision, 'granted');
    const claims = result.outcome.decision === 'granted' ? result.outcome.claims : {};
    assert.equal(claims.sub, 'cluster-a:payments:orders-sync-x7k2p');
    assert.equal(claims.aud, 'tyk-internal');
    assert.equal(claims.policy, 'payments-read');
    assert.equal(claims.policies, 'payments-read payments-write');
    assert.equal(claims.exp, NOW + 300);
    assert.equal(claims.jti, '(generated at exchange)');
  });
});

describe('explainDecision: templates and trust tiers', () => {
  it('a matched rule reports the template outputs it dropped, and grants the rest', () => {
    const cfg = config({
      rules: [
        {
          name: 'team-read',
          match: { namespaces: ['payments'] },
          policies: ['{namespace.labels.team}-read', '{namespace.labels.missing}-read', '{serviceAccount}-write'],
          allowedPolicies: ['*-read'],
        },
      ],
    });
    const result = explain({}, cfg);
    assert.deepEqual(result.rules, [
      {
        name: 'team-read',
        tier: 'admin',
        matched: true,
        dropped: [
          'template "{namespace.labels.missing}-read": {namespace.labels.missing} has no value',
          '"argo-runner-write" is not in allowedPolicies [*-read]',
        ],
      },
    ]);
    assert.deepEqual(result.granted, ['payments-read']);
  });

  it('a submitter-tier rule the pod matches grants its requestable policies without a scope', () => {
    const result = explain({
      identity: identity({ cluster: { podLabels: { 'token-broker.io/wants': 'ledger' }, podAnnotations: {} } }),
    });
    assert.deepEqual(result.rules.find((r) => r.name === 'pods-may-ask-write'), { name: 'pods-may-ask-write', tier: 'submitter', matched: true });
    assert.deepEqual(result.granted, ['payments-read', 'payments-write', 'ledger-write']);
    assert.deepEqual(result.requestable, ['payments-audit']);
  });

  it('pod labels in another namespace select nothing: the submitter-tier rule is scoped by namespace', () => {
    const result = explain({
      identity: identity({
        namespace: 'orders',
        subject: 'system:serviceaccount:orders:argo-runner',
        cluster: { podLabels: { 'token-broker.io/wants': 'ledger' }, podAnnotations: {} },
      }),
    });
    assert.deepEqual(result.granted, ['orders-read']);
    assert.equal(result.rules.find((r) => r.name === 'pods-may-ask-write')?.reason, 'namespace "orders" matches none of [payments]');
  });
});
