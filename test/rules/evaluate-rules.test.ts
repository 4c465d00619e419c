import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { evaluateRules } from '../../src/server/rules/evaluate-rules.js';
import type { RuleConfig } from '../../src/server/config/schema.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';

const LIFETIMES = { defaultTtlSeconds: 600, maxTtlSeconds: 3600 };

function rule(name: string, match: RuleConfig['match'], policies: string[], ttlSeconds?: number): RuleConfig {
  return { name, match, policies, ...(ttlSeconds !== undefined && { ttlSeconds }) };
}

function identity(overrides: Partial<WorkloadIdentity> = {}): WorkloadIdentity {
  const namespace = overrides.namespace ?? 'payments';
  const serviceAccount = overrides.serviceAccount ?? 'argo-runner';
  return {
    issuerName: 'cluster-a',
    issuer: 'https://cluster-a.example',
    subject: `system:serviceaccount:${namespace}:${serviceAccount}`,
    namespace,
    serviceAccount,
    podName: 'orders-sync-x7k2p-call-api-3149217812',
    podUid: '0d8b260e-0000-4000-8000-000000000001',
    claims: {
      'kubernetes.io': {
        namespace,
        serviceaccount: { name: serviceAccount },
        pod: { name: 'orders-sync-x7k2p-call-api-3149217812' },
      },
      team: 'orders',
      groups: ['a', 'b'],
      level: 3,
      flag: true,
      nothing: null,
      'a/b': 'slash',
    },
    ...overrides,
  };
}

describe('evaluateRules: policies and lifetime', () => {
  it('unions the policies of every matching rule, de-duplicated, in rule order', () => {
    const rules = compileRules([
      rule('first', { namespaces: ['payments'] }, ['b', 'a', 'b']),
      rule('skipped', { namespaces: ['orders'] }, ['x']),
      rule('second', {}, ['c', 'a']),
      rule('third', { serviceAccounts: ['argo-*'] }, ['d', 'b']),
    ]);
    const decision = evaluateRules(rules, identity(), LIFETIMES);
    assert.deepEqual(decision.policies, ['b', 'a', 'c', 'd']);
    assert.deepEqual(decision.matchedRules, ['first', 'second', 'third']);
  });

  const ttlCases: readonly { name: string; ttls: (number | undefined)[]; lifetimes?: typeof LIFETIMES; expected: number }[] = [
    { name: 'the default when no matching rule sets a ttl', ttls: [undefined, undefined], expected: 600 },
    { name: 'the only ttl set', ttls: [undefined, 300], expected: 300 },
    { name: 'the smallest of several', ttls: [900, 120, 300], expected: 120 },
    { name: 'a rule ttl above the default still wins over the default', ttls: [1800], expected: 1800 },
    { name: 'capped by the maximum', ttls: [7200], lifetimes: { defaultTtlSeconds: 600, maxTtlSeconds: 3600 }, expected: 3600 },
    { name: 'the default capped by the maximum', ttls: [undefined], lifetimes: { defaultTtlSeconds: 900, maxTtlSeconds: 300 }, expected: 300 },
  ];
  for (const c of ttlCases) {
    it(`ttl: ${c.name}`, () => {
      const rules = compileRules(c.ttls.map((ttl, i) => rule(`r${i}`, {}, [`p${i}`], ttl)));
      assert.equal(evaluateRules(rules, identity(), c.lifetimes ?? LIFETIMES).ttlSeconds, c.expected);
    });
  }

  it('ignores the ttl of rules that do not match', () => {
    const rules = compileRules([rule('short-but-elsewhere', { namespaces: ['orders'] }, ['x'], 60), rule('here', {}, ['y'], 900)]);
    const decision = evaluateRules(rules, identity(), LIFETIMES);
    assert.equal(decision.ttlSeconds, 900);
    assert.deepEqual(decision.policies, ['y']);
  });

  it('grants nothing when no rule matches, with the default lifetime and a verdict per rule', () => {
    const rules = compileRules([rule('a', { namespaces: ['orders'] }, ['x'], 60), rule('b', { serviceAccounts: ['deployer'] }, ['y'])]);
    const decision = evaluateRules(rules, identity(), LIFETIMES);
    assert.deepEqual(decision.policies, []);
    assert.deepEqual(decision.matchedRules, []);
    assert.equal(decision.ttlSeconds, 600);
    assert.deepEqual(
      decision.verdicts.map((v) => [v.rule, v.matched]),
      [
        ['a', false],
        ['b', false],
      ],
    );
  });

  it('a rule with an empty match matches every identity, even one without Kubernetes fields', () => {
    const rules = compileRules([rule('everyone', {}, ['base'])]);
    const bare: WorkloadIdentity = { issuerName: 'oidc', issuer: 'https://idp.example', subject: 'robot', claims: {} };
    assert.deepEqual(evaluateRules(rules, bare, LIFETIMES).policies, ['base']);
    assert.deepEqual(evaluateRules(rules, identity(), LIFETIMES).verdicts, [{ rule: 'everyone', matched: true }]);
  });

  it('is pure: the same inputs give the same decision', () => {
    const rules = compileRules([rule('a', { namespaces: ['pay*'] }, ['x'], 300), rule('b', {}, ['y'])]);
    assert.deepEqual(evaluateRules(rules, identity(), LIFETIMES), evaluateRules(rules, identity(), LIFETIMES));
  });
});

describe('evaluateRules: conditions', () => {
  // Each case: one rule, an identity, whether it matches, and the expected reason when it does not.
  const cases: readonly { name: string; match: RuleConfig['match']; who?: Partial<WorkloadIdentity>; bare?: boolean; reason?: string }[] = [
    { name: 'issuer listed', match: { issuers: ['cluster-b', 'cluster-a'] } },
    { name: 'issuer not listed', match: { issuers: ['cluster-b'] }, reason: 'issuer "cluster-a" is not in [cluster-b]' },
    { name: 'namespace exact', match: { namespaces: ['payments'] } },
    { name: 'namespace glob', match: { namespaces: ['orders', 'pay*'] } },
    {
      name: 'namespace not matched',
      match: { namespaces: ['orders', 'payments-*'] },
      reason: 'namespace "payments" matches none of [orders, payments-*]',
    },
    { name: 'namespace required but absent', match: { namespaces: ['*'] }, bare: true, reason: 'the token carries no namespace' },
    { name: 'service account glob', match: { serviceAccounts: ['argo-*'] } },
    {
      name: 'service account not matched',
      match: { serviceAccounts: ['deployer', 'ci-*'] },
      reason: 'service account "argo-runner" matches none of [deployer, ci-*]',
    },
    {
      name: 'service account required but absent',
      match: { serviceAccounts: ['*'] },
      who: { serviceAccount: undefined },
      reason: 'the token carries no service account',
    },
    { name: 'claim by pointer into kubernetes.io', match: { claims: { '/kubernetes.io/serviceaccount/name': 'argo-*' } } },
    { name: 'top-level string claim', match: { claims: { '/team': 'orders' } } },
    { name: 'escaped pointer', match: { claims: { '/a~1b': 'slash' } } },
    { name: 'claim value not matched', match: { claims: { '/team': 'payments' } }, reason: 'claim /team = "orders" does not match "payments"' },
    { name: 'claim absent', match: { claims: { '/missing': '*' } }, reason: 'claim /missing is absent' },
    { name: 'claim array is not a string', match: { claims: { '/groups': '*' } }, reason: 'claim /groups is not a string' },
    { name: 'claim array element by index', match: { claims: { '/groups/1': 'b' } } },
    { name: 'claim number is not a string', match: { claims: { '/level': '3' } }, reason: 'claim /level is not a string' },
    { name: 'claim boolean is not a string', match: { claims: { '/flag': '*' } }, reason: 'claim /flag is not a string' },
    { name: 'claim null is not a string', match: { claims: { '/nothing': '*' } }, reason: 'claim /nothing is not a string' },
    { name: 'claim object is not a string', match: { claims: { '/kubernetes.io/serviceaccount': '*' } }, reason: 'claim /kubernetes.io/serviceaccount is not a string' },
    { name: 'prototype key is absent', match: { claims: { '/constructor': '*' } }, reason: 'claim /constructor is absent' },
    { name: 'all conditions hold', match: { issuers: ['cluster-a'], namespaces: ['payments'], serviceAccounts: ['argo-runner'], claims: { '/team': 'orders' } } },
    {
      name: 'the first failing condition is named: issuer before namespace',
      match: { issuers: ['cluster-b'], namespaces: ['orders'] },
      reason: 'issuer "cluster-a" is not in [cluster-b]',
    },
    {
      name: 'the first failing condition is named: namespace before service account',
      match: { namespaces: ['orders'], serviceAccounts: ['deployer'] },
      reason: 'namespace "payments" matches none of [orders]',
    },
    {
      name: 'the first failing condition is named: service account before claims',
      match: { serviceAccounts: ['deployer'], claims: { '/team': 'x' } },
      reason: 'service account "argo-runner" matches none of [deployer]',
    },
    {
      name: 'the first failing condition is named: claims in declaration order',
      match: { claims: { '/team': 'orders', '/level': '3', '/missing': '*' } },
      reason: 'claim /level is not a string',
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.reason === undefined ? 'matches' : 'does not match'}`, () => {
      const rules = compileRules([rule('under-test', c.match, ['granted'])]);
      const who: WorkloadIdentity = c.bare
        ? { issuerName: 'cluster-a', issuer: 'https://cluster-a.example', subject: 'robot', claims: {} }
        : identity(c.who);
      const decision = evaluateRules(rules, who, LIFETIMES);
      if (c.reason === undefined) {
        assert.deepEqual(decision.verdicts, [{ rule: 'under-test', matched: true }]);
        assert.deepEqual(decision.policies, ['granted']);
      } else {
        assert.deepEqual(decision.verdicts, [{ rule: 'under-test', matched: false, reason: c.reason }]);
        assert.deepEqual(decision.policies, []);
      }
    });
  }
});

describe('compileRules', () => {
  const base = [rule('a', { namespaces: ['payments'] }, ['x'], 300), rule('b', {}, ['y'])];

  it('gives the same version to the same rules', () => {
    assert.equal(compileRules(base).version, compileRules(structuredClone(base)).version);
  });

  const changes: readonly { name: string; rules: RuleConfig[] }[] = [
    { name: 'a policy', rules: [rule('a', { namespaces: ['payments'] }, ['x', 'z'], 300), rule('b', {}, ['y'])] },
    { name: 'a ttl', rules: [rule('a', { namespaces: ['payments'] }, ['x'], 301), rule('b', {}, ['y'])] },
    { name: 'a ttl removed', rules: [rule('a', { namespaces: ['payments'] }, ['x']), rule('b', {}, ['y'])] },
    { name: 'a condition', rules: [rule('a', { namespaces: ['payments-*'] }, ['x'], 300), rule('b', {}, ['y'])] },
    { name: 'a rule name', rules: [rule('a2', { namespaces: ['payments'] }, ['x'], 300), rule('b', {}, ['y'])] },
    { name: 'the rule order', rules: [rule('b', {}, ['y']), rule('a', { namespaces: ['payments'] }, ['x'], 300)] },
    { name: 'a rule removed', rules: [rule('a', { namespaces: ['payments'] }, ['x'], 300)] },
  ];
  for (const change of changes) {
    it(`changes the version when ${change.name} changes`, () => {
      assert.notEqual(compileRules(change.rules).version, compileRules(base).version);
    });
  }

  it('de-duplicates a rule\'s own policies and freezes the result', () => {
    const compiled = compileRules([rule('a', {}, ['x', 'y', 'x'])]);
    assert.deepEqual(compiled.rules[0]?.policies, [
      { kind: 'literal', value: 'x' },
      { kind: 'literal', value: 'y' },
    ]);
    assert.equal(Object.isFrozen(compiled), true);
    assert.equal(Object.isFrozen(compiled.rules), true);
  });
});
