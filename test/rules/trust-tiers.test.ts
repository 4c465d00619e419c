import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ruleTier, trustTierViolations } from '../../src/server/rules/trust-tiers.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { validateConfig, type ConfigProblem } from '../../src/server/config/validate-config.js';
import type { RuleConfig } from '../../src/server/config/schema.js';

const GRANTS_ONLY_REQUESTABLE =
  'this rule reads pod labels, pod annotations, the pod name or the workflow name, which a workflow\'s submitter sets: it may only offer `requestable` policies, not grant `policies`';
const NEEDS_ADMIN_SCOPE =
  'a rule with pod conditions must also narrow namespaces, serviceAccounts, namespaceSelector or serviceAccountSelector (not only `*` or an empty selector), so administrators decide which workloads may select its policies';
const GRANTS_NOTHING = 'a rule must grant `policies` or offer `requestable` ones';

const POD_SELECTOR = { matchLabels: { 'example.com/needs': 'payments-write' } };

/** A valid configuration with Kubernetes enabled; `rules` replaces the rule list. */
function configWith(rules: unknown[]): Record<string, unknown> {
  return {
    server: { publicUrl: 'https://token-broker.example' },
    issuers: [{ name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'] }],
    signing: { keysDir: '/etc/token-broker/keys' },
    kubernetes: { kubeconfig: '/etc/token-broker/kubeconfig' },
    rules: [{ name: 'baseline', match: { namespaces: ['*'] }, policies: ['status-read'] }, ...rules],
  };
}

function problemsOf(rules: unknown[]): readonly ConfigProblem[] {
  const result = validateConfig(configWith(rules));
  return result.ok ? [] : result.problems;
}

describe('ruleTier', () => {
  const cases: readonly { name: string; match: RuleConfig['match']; tier: 'admin' | 'submitter' }[] = [
    { name: 'empty match', match: {}, tier: 'admin' },
    { name: 'namespaces and service accounts', match: { namespaces: ['payments'], serviceAccounts: ['argo-*'] }, tier: 'admin' },
    { name: 'namespace and service-account selectors', match: { namespaceSelector: { matchLabels: { team: 'a' } }, serviceAccountSelector: {} }, tier: 'admin' },
    { name: 'claims and issuers', match: { issuers: ['in-cluster'], claims: { '/kubernetes.io/namespace': 'payments' } }, tier: 'admin' },
    { name: 'podSelector', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, tier: 'submitter' },
    { name: 'an empty podSelector still reads the pod', match: { namespaces: ['payments'], podSelector: {} }, tier: 'submitter' },
    { name: 'podAnnotationSelector', match: { namespaces: ['payments'], podAnnotationSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] } }, tier: 'submitter' },
    { name: 'workflows', match: { namespaces: ['payments'], workflows: ['release-*'] }, tier: 'submitter' },
    { name: 'a claim on the pod name (the submitter names the workflow, Argo derives the pod name)', match: { namespaces: ['payments'], claims: { '/kubernetes.io/pod/name': 'nightly-*' } }, tier: 'submitter' },
    { name: 'a claim on the pod object', match: { namespaces: ['payments'], claims: { '/kubernetes.io/pod': '*' } }, tier: 'submitter' },
    { name: 'a claim on the service account name', match: { claims: { '/kubernetes.io/serviceaccount/name': 'argo-*' } }, tier: 'admin' },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.tier}`, () => {
      assert.equal(ruleTier({ name: 'r', match: c.match, requestable: ['x'] }), c.tier);
    });
  }
});

describe('trustTierViolations', () => {
  const cases: readonly { name: string; rule: RuleConfig; violations: { field: string; message: string }[] }[] = [
    { name: 'admin rule granting policies', rule: { name: 'r', match: { namespaces: ['payments'] }, policies: ['a'] }, violations: [] },
    { name: 'admin rule offering requestable only', rule: { name: 'r', match: { namespaces: ['payments'] }, requestable: ['a'] }, violations: [] },
    {
      name: 'submitter rule offering requestable, scoped by namespaces',
      rule: { name: 'r', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [],
    },
    {
      name: 'submitter rule scoped by a namespaceSelector',
      rule: { name: 'r', match: { namespaceSelector: { matchLabels: { team: 'payments' } }, workflows: ['release-*'] }, requestable: ['a'] },
      violations: [],
    },
    {
      name: 'submitter rule scoped by serviceAccounts',
      rule: { name: 'r', match: { serviceAccounts: ['argo-runner'], podAnnotationSelector: {} }, requestable: ['a'] },
      violations: [],
    },
    {
      name: 'submitter rule scoped by a serviceAccountSelector',
      rule: { name: 'r', match: { serviceAccountSelector: { matchLabels: { role: 'deployer' } }, podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [],
    },
    { name: 'a rule granting nothing', rule: { name: 'r', match: { namespaces: ['payments'] } }, violations: [{ field: 'policies', message: GRANTS_NOTHING }] },
    {
      name: 'podSelector with policies',
      rule: { name: 'r', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, policies: ['a'] },
      violations: [{ field: 'policies', message: GRANTS_ONLY_REQUESTABLE }],
    },
    {
      name: 'podSelector with policies and requestable',
      rule: { name: 'r', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, policies: ['a'], requestable: ['b'] },
      violations: [{ field: 'policies', message: GRANTS_ONLY_REQUESTABLE }],
    },
    {
      name: 'podSelector without a namespace or service-account condition',
      rule: { name: 'r', match: { podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [{ field: 'match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'issuers and claims do not scope a submitter rule',
      rule: { name: 'r', match: { issuers: ['in-cluster'], claims: { '/kubernetes.io/namespace': 'payments' }, workflows: ['*'] }, requestable: ['a'] },
      violations: [{ field: 'match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'namespaces: [*] scopes nothing (pod labels alone would unlock it everywhere)',
      rule: { name: 'r', match: { namespaces: ['*'], podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [{ field: 'match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'serviceAccounts: [**] scopes nothing',
      rule: { name: 'r', match: { serviceAccounts: ['**'], podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [{ field: 'match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'an empty namespaceSelector scopes nothing',
      rule: { name: 'r', match: { namespaceSelector: {}, serviceAccountSelector: { matchLabels: {}, matchExpressions: [] }, podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [{ field: 'match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'a star glob next to a real one still scopes',
      rule: { name: 'r', match: { namespaces: ['*', 'payments'], podSelector: POD_SELECTOR }, requestable: ['a'] },
      violations: [],
    },
    {
      name: 'both violations at once',
      rule: { name: 'r', match: { podAnnotationSelector: {} }, policies: ['a'] },
      violations: [
        { field: 'policies', message: GRANTS_ONLY_REQUESTABLE },
        { field: 'match', message: NEEDS_ADMIN_SCOPE },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(trustTierViolations(c.rule), c.violations);
    });
  }
});

describe('validateConfig refuses trust-tier violations with the path of the rule', () => {
  it('accepts a submitter rule that offers requestable policies within a namespace', () => {
    const result = validateConfig(
      configWith([{ name: 'release-write', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, requestable: ['payments-write'] }]),
    );
    assert.equal(result.ok, true, JSON.stringify(result.ok ? [] : result.problems));
  });

  const cases: readonly { name: string; rule: Record<string, unknown>; problems: ConfigProblem[] }[] = [
    {
      name: 'podSelector with policies',
      rule: { name: 'by-pod', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, policies: ['payments-write'] },
      problems: [{ path: 'rules[1].policies', message: GRANTS_ONLY_REQUESTABLE }],
    },
    {
      name: 'podAnnotationSelector with policies',
      rule: {
        name: 'by-annotation',
        match: { namespaces: ['payments'], podAnnotationSelector: { matchLabels: { 'example.com/grant': 'yes' } } },
        policies: ['payments-write'],
      },
      problems: [{ path: 'rules[1].policies', message: GRANTS_ONLY_REQUESTABLE }],
    },
    {
      name: 'workflows with policies',
      rule: { name: 'by-workflow', match: { namespaces: ['payments'], workflows: ['release-*'] }, policies: ['payments-write'] },
      problems: [{ path: 'rules[1].policies', message: GRANTS_ONLY_REQUESTABLE }],
    },
    {
      name: 'podSelector without a namespace or service-account condition',
      rule: { name: 'anywhere', match: { podSelector: POD_SELECTOR }, requestable: ['payments-write'] },
      problems: [{ path: 'rules[1].match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'workflows scoped only by an issuer',
      rule: { name: 'anywhere', match: { issuers: ['in-cluster'], workflows: ['release-*'] }, requestable: ['payments-write'] },
      problems: [{ path: 'rules[1].match', message: NEEDS_ADMIN_SCOPE }],
    },
    {
      name: 'both at once',
      rule: { name: 'worst', match: { podSelector: POD_SELECTOR }, policies: ['payments-write'] },
      problems: [
        { path: 'rules[1].policies', message: GRANTS_ONLY_REQUESTABLE },
        { path: 'rules[1].match', message: NEEDS_ADMIN_SCOPE },
      ],
    },
    {
      name: 'a rule granting nothing',
      rule: { name: 'empty', match: { namespaces: ['payments'] } },
      problems: [{ path: 'rules[1].policies', message: GRANTS_NOTHING }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(problemsOf([c.rule]), c.problems);
    });
  }
});

describe('compileRules enforces the trust tiers even when validation is bypassed', () => {
  it('throws on a submitter rule that grants policies', () => {
    assert.throws(
      () =>
        compileRules([
          { name: 'ok', match: { namespaces: ['*'] }, policies: ['status-read'] },
          { name: 'by-pod', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, policies: ['payments-write'] },
        ]),
      { message: `rule "by-pod": ${GRANTS_ONLY_REQUESTABLE}` },
    );
  });

  it('throws on a submitter rule without administrator scope', () => {
    assert.throws(() => compileRules([{ name: 'anywhere', match: { workflows: ['*'] }, requestable: ['payments-write'] }]), {
      message: `rule "anywhere": ${NEEDS_ADMIN_SCOPE}`,
    });
  });

  it('throws on a rule that grants nothing', () => {
    assert.throws(() => compileRules([{ name: 'empty', match: {} }]), { message: `rule "empty": ${GRANTS_NOTHING}` });
  });

  it('compiles a well-formed submitter rule as tier submitter, and the rule set then needs the pod', () => {
    const rules = compileRules([
      { name: 'release-write', match: { namespaces: ['payments'], podSelector: POD_SELECTOR }, requestable: ['payments-write'] },
    ]);
    assert.equal(rules.rules[0]?.tier, 'submitter');
    assert.deepEqual(rules.needs, { namespaceLabels: false, serviceAccountLabels: false, pod: true });
  });
});
