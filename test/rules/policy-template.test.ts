import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expandPolicyTemplate, parsePolicyTemplate, type TemplatePart } from '../../src/server/rules/policy-template.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { evaluateRules } from '../../src/server/rules/evaluate-rules.js';
import type { ClusterMetadata, WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import type { RuleConfig } from '../../src/server/config/schema.js';
import { PAYMENTS_RUNNER_POD } from '../support/workload-identities.js';

const LIFETIMES = { defaultTtlSeconds: 600, maxTtlSeconds: 3600 };

function identity(cluster?: ClusterMetadata, overrides: Partial<WorkloadIdentity> = {}): WorkloadIdentity {
  return {
    ...PAYMENTS_RUNNER_POD,
    ...(cluster !== undefined && { cluster }),
    ...overrides,
  };
}

const TEAM_PAYMENTS: ClusterMetadata = {
  namespaceLabels: { team: 'payments', 'example.com/cost-center': 'cc-42' },
  serviceAccountLabels: { role: 'deployer' },
};

describe('parsePolicyTemplate: what a policy may be', () => {
  it('a string without braces is a literal', () => {
    assert.deepEqual(parsePolicyTemplate('payments-read'), { kind: 'literal', value: 'payments-read' });
    assert.deepEqual(parsePolicyTemplate('team.payments:read_v2'), { kind: 'literal', value: 'team.payments:read_v2' });
  });

  const accepted: readonly { source: string; parts: readonly TemplatePart[] }[] = [
    { source: '{namespace}', parts: [{ variable: { source: 'namespace' } }] },
    {
      source: '{issuer}-{namespace}-{serviceAccount}',
      parts: [
        { variable: { source: 'issuer' } },
        { text: '-' },
        { variable: { source: 'namespace' } },
        { text: '-' },
        { variable: { source: 'serviceAccount' } },
      ],
    },
    { source: '{namespace.labels.team}-read', parts: [{ variable: { source: 'namespace.labels', key: 'team' } }, { text: '-read' }] },
    { source: 'svc-{serviceAccount.labels.role}', parts: [{ text: 'svc-' }, { variable: { source: 'serviceAccount.labels', key: 'role' } }] },
    {
      source: 'cc-{namespace.labels.example.com/cost-center}',
      parts: [{ text: 'cc-' }, { variable: { source: 'namespace.labels', key: 'example.com/cost-center' } }],
    },
  ];
  for (const c of accepted) {
    it(`parses the template ${c.source}`, () => {
      assert.deepEqual(parsePolicyTemplate(c.source), { kind: 'template', source: c.source, parts: c.parts });
    });
  }

  const ADMIN_ONLY =
    'cannot be used in a policy: templates may read only {issuer}, {namespace}, {serviceAccount}, {namespace.labels.KEY} and {serviceAccount.labels.KEY} (values set by administrators, never by a workflow\'s submitter)';
  const refusedVariables: readonly { source: string; variable: string }[] = [
    { source: '{pod}-read', variable: '{pod}' },
    { source: '{pod.labels.team}-read', variable: '{pod.labels.team}' },
    { source: '{pod.annotations.team}-read', variable: '{pod.annotations.team}' },
    { source: '{workflow}-write', variable: '{workflow}' },
    { source: '{node}', variable: '{node}' },
    { source: '{namespace.annotations.team}-read', variable: '{namespace.annotations.team}' },
    { source: '{serviceAccount.annotations.role}', variable: '{serviceAccount.annotations.role}' },
    { source: '{sub}', variable: '{sub}' },
    { source: '{Namespace}', variable: '{Namespace}' },
    { source: '{namespace.labels.}', variable: '{namespace.labels.}' },
    { source: '{}-read', variable: '{}' },
    { source: '{constructor}', variable: '{constructor}' },
  ];
  for (const c of refusedVariables) {
    it(`refuses ${c.source}, naming ${c.variable}`, () => {
      assert.throws(() => parsePolicyTemplate(c.source), { message: `${c.variable} ${ADMIN_ONLY}` });
    });
  }

  for (const source of ['{namespace', 'namespace}', 'a{namespace}}', '{{namespace}}', 'x-{namespace}-{', '}{namespace}']) {
    it(`refuses unbalanced braces: ${source}`, () => {
      assert.throws(() => parsePolicyTemplate(source), { message: `unbalanced braces in "${source}"` });
    });
  }

  it('refuses a variable nested in another (the outer braces are left unbalanced)', () => {
    assert.throws(() => parsePolicyTemplate('{namespace.labels.{namespace}}'), { message: 'unbalanced braces in "{namespace.labels.{namespace}}"' });
  });
});

describe('expandPolicyTemplate: one pass over administrator-controlled values', () => {
  const expand = (source: string, cluster?: ClusterMetadata, overrides: Partial<WorkloadIdentity> = {}) =>
    expandPolicyTemplate(parsePolicyTemplate(source), identity(cluster, overrides));

  it('a literal is itself', () => {
    assert.deepEqual(expand('payments-read'), { ok: true, policy: 'payments-read' });
  });

  it('fills issuer, namespace and service account', () => {
    assert.deepEqual(expand('{issuer}.{namespace}.{serviceAccount}'), { ok: true, policy: 'cluster-a.payments.argo-runner' });
  });

  it('fills namespace and service-account labels', () => {
    assert.deepEqual(expand('{namespace.labels.team}-read', TEAM_PAYMENTS), { ok: true, policy: 'payments-read' });
    assert.deepEqual(expand('{serviceAccount.labels.role}', TEAM_PAYMENTS), { ok: true, policy: 'deployer' });
    assert.deepEqual(expand('cc-{namespace.labels.example.com/cost-center}', TEAM_PAYMENTS), { ok: true, policy: 'cc-cc-42' });
  });

  const missing: readonly { name: string; source: string; cluster?: ClusterMetadata; overrides?: Partial<WorkloadIdentity>; variable: string }[] = [
    { name: 'label absent', source: '{namespace.labels.owner}-read', cluster: TEAM_PAYMENTS, variable: 'namespace.labels.owner' },
    { name: 'label empty', source: '{namespace.labels.team}-read', cluster: { namespaceLabels: { team: '' } }, variable: 'namespace.labels.team' },
    { name: 'labels not looked up', source: '{namespace.labels.team}-read', variable: 'namespace.labels.team' },
    { name: 'service-account labels not looked up', source: '{serviceAccount.labels.role}', cluster: { namespaceLabels: {} }, variable: 'serviceAccount.labels.role' },
    { name: 'no namespace (an oidc token)', source: '{namespace}-read', overrides: { namespace: undefined }, variable: 'namespace' },
    { name: 'no service account', source: 'sa-{serviceAccount}', overrides: { serviceAccount: undefined }, variable: 'serviceAccount' },
    // Members of Object.prototype are not labels.
    { name: 'label "constructor" absent', source: '{namespace.labels.constructor}-read', cluster: { namespaceLabels: {} }, variable: 'namespace.labels.constructor' },
    { name: 'label "__proto__" absent', source: '{namespace.labels.__proto__}-read', cluster: { namespaceLabels: {} }, variable: 'namespace.labels.__proto__' },
    { name: 'label "toString" absent', source: '{serviceAccount.labels.toString}', cluster: { serviceAccountLabels: {} }, variable: 'serviceAccount.labels.toString' },
  ];
  for (const c of missing) {
    it(`no value -> a reason, not an exception: ${c.name}`, () => {
      assert.deepEqual(expand(c.source, c.cluster, c.overrides), { ok: false, reason: `template "${c.source}": {${c.variable}} has no value` });
    });
  }

  const smuggled: readonly { name: string; team: string }[] = [
    { name: 'a value holding a template variable', team: '{namespace}' },
    { name: 'a value holding a label template', team: '{serviceAccount.labels.role}' },
    { name: 'a glob star', team: '*' },
    { name: 'a value ending in a star', team: 'evil*' },
    { name: 'spaces', team: 'payments admin' },
    { name: 'a slash', team: 'payments/admin' },
    { name: 'a newline', team: 'payments\nadmin' },
  ];
  for (const c of smuggled) {
    it(`a label value is inserted once and never expanded again: ${c.name}`, () => {
      const source = '{namespace.labels.team}-read';
      const result = expand(source, { namespaceLabels: { team: c.team } });
      assert.deepEqual(result, { ok: false, reason: `template "${source}" produced "${`${c.team}-read`}", not a plain policy ID` });
    });
  }

  it('refuses an expansion longer than a policy ID may be', () => {
    const long = 'a'.repeat(63);
    const source = '{namespace.labels.a}{namespace.labels.b}{namespace.labels.c}';
    const result = expand(source, { namespaceLabels: { a: long, b: long, c: long } });
    assert.deepEqual(result, { ok: false, reason: `template "${source}" produced "${'a'.repeat(80)}", not a plain policy ID` });
  });
});

describe('evaluateRules with templates: allowedPolicies bounds what a template produces', () => {
  const templateRule: RuleConfig = {
    name: 'team-read',
    match: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } },
    policies: ['{namespace.labels.team}-read'],
    allowedPolicies: ['*-read'],
  };
  const rules = compileRules([templateRule]);

  it('grants the produced policy when it is allowed', () => {
    const decision = evaluateRules(rules, identity({ namespaceLabels: { team: 'payments' } }), LIFETIMES);
    assert.deepEqual(decision.policies, ['payments-read']);
    assert.deepEqual(decision.verdicts, [{ rule: 'team-read', matched: true }]);
  });

  it('drops a produced policy outside allowedPolicies, with the reason in the verdict', () => {
    const narrow = compileRules([{ ...templateRule, policies: ['{namespace.labels.team}'], allowedPolicies: ['payments-*', 'orders-*'] }]);
    const decision = evaluateRules(narrow, identity({ namespaceLabels: { team: 'admin' } }), LIFETIMES);
    assert.deepEqual(decision.policies, []);
    assert.deepEqual(decision.matchedRules, ['team-read']);
    assert.deepEqual(decision.verdicts, [{ rule: 'team-read', matched: true, dropped: ['"admin" is not in allowedPolicies [payments-*, orders-*]'] }]);
  });

  it('drops a label value that smuggles a glob, even though "evil*-read" matches "*-read" as a glob', () => {
    const decision = evaluateRules(rules, identity({ namespaceLabels: { team: 'evil*' } }), LIFETIMES);
    assert.deepEqual(decision.policies, []);
    assert.deepEqual(decision.verdicts, [
      { rule: 'team-read', matched: true, dropped: ['template "{namespace.labels.team}-read" produced "evil*-read", not a plain policy ID'] },
    ]);
  });

  it('drops a template whose label is missing, and the rule still contributes its other policies', () => {
    const mixed = compileRules([
      {
        name: 'mixed',
        match: { namespaces: ['payments'] },
        policies: ['{namespace.labels.owner}-read', '{namespace}-status'],
        allowedPolicies: ['*-read', '*-status'],
      },
    ]);
    const decision = evaluateRules(mixed, identity({ namespaceLabels: { team: 'payments' } }), LIFETIMES);
    assert.deepEqual(decision.policies, ['payments-status']);
    assert.deepEqual(decision.verdicts, [
      { rule: 'mixed', matched: true, dropped: ['template "{namespace.labels.owner}-read": {namespace.labels.owner} has no value'] },
    ]);
  });

  it('applies allowedPolicies to requestable templates too', () => {
    const requestable = compileRules([
      {
        name: 'team-write',
        match: { namespaces: ['payments'] },
        requestable: ['{namespace.labels.team}-write'],
        allowedPolicies: ['payments-write'],
      },
    ]);
    const allowed = evaluateRules(requestable, identity({ namespaceLabels: { team: 'payments' } }), LIFETIMES);
    assert.deepEqual(allowed.policies, []);
    assert.deepEqual(allowed.requestable, ['payments-write']);
    const refused = evaluateRules(requestable, identity({ namespaceLabels: { team: 'orders' } }), LIFETIMES);
    assert.deepEqual(refused.requestable, []);
    assert.deepEqual(refused.verdicts, [{ rule: 'team-write', matched: true, dropped: ['"orders-write" is not in allowedPolicies [payments-write]'] }]);
  });

  it('the compiled rule set asks for namespace labels only when a template or selector reads them', () => {
    assert.deepEqual(rules.needs, { namespaceLabels: true, serviceAccountLabels: false, pod: false });
    const saTemplate = compileRules([
      { name: 'sa', match: { namespaces: ['payments'] }, policies: ['{serviceAccount.labels.role}'], allowedPolicies: ['deployer'] },
    ]);
    assert.deepEqual(saTemplate.needs, { namespaceLabels: false, serviceAccountLabels: true, pod: false });
    const plain = compileRules([{ name: 'plain', match: { namespaces: ['payments'] }, policies: ['{namespace}-read'], allowedPolicies: ['*-read'] }]);
    assert.deepEqual(plain.needs, { namespaceLabels: false, serviceAccountLabels: false, pod: false });
  });
});
