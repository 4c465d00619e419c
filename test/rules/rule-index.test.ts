import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { candidateRules, compileRules } from '../../src/server/rules/compiled-rules.js';
import { evaluateRules } from '../../src/server/rules/evaluate-rules.js';
import { trustTierViolations } from '../../src/server/rules/trust-tiers.js';
import type { RuleConfig } from '../../src/server/config/schema.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';

/*
 * The rule index must never change a decision: on any rule set and any identity, evaluating through the index
 * gives exactly what a scan of every rule in order gives (compileRules(..., { index: false })), verdicts included.
 */

const LIFETIMES = { defaultTtlSeconds: 600, maxTtlSeconds: 3600 };
const ISSUERS = ['cluster-a', 'cluster-b', 'cluster-c'];
const NAMESPACES = ['payments', 'payments-eu', 'orders', 'ci', 'sandbox', '*', 'pay', 'p', 'team-1-dev', 'team-12'];
// Exact names, globs with a literal prefix (shared, nested, equal to a name), and globs that start with `*`.
const NAMESPACE_PATTERNS = [
  'payments', 'payments-eu', 'orders', 'ci', 'sandbox', 'pay*', 'payments*', 'payments-*', 'p*', 'o*s', 'team-1*', 'team-*-dev',
  '*-eu', '*', '**',
];
const SERVICE_ACCOUNTS = ['argo-runner', 'deployer', 'default'];
const SA_PATTERNS = ['argo-runner', 'argo-*', 'deployer', '*', 'default'];

const subset = <T>(values: readonly T[]) => fc.uniqueArray(fc.constantFrom(...values), { minLength: 1, maxLength: 3 });

const matchArb = fc.record(
  {
    issuers: subset([...ISSUERS, 'cluster-z']),
    // Duplicates on purpose: the index must place such a rule once.
    namespaces: fc.array(fc.constantFrom(...NAMESPACE_PATTERNS), { minLength: 1, maxLength: 3 }),
    serviceAccounts: subset(SA_PATTERNS),
    claims: fc.constantFrom({ '/team': 'orders' }, { '/team': 'pay*' }, { '/missing': '*' }),
    namespaceSelector: fc.constantFrom({ matchLabels: { team: 'payments' } }, { matchExpressions: [{ key: 'tier', operator: 'Exists' as const }] }),
  },
  { requiredKeys: [] },
);

/** A rule that passes the trust tiers (every generated condition is administrator-set): it grants, offers, or both. */
const ruleArb = (name: string) =>
  fc
    .record({
      match: matchArb,
      policies: fc.option(subset(['p-read', 'p-write', 'status-read', '{namespace}-read']), { nil: undefined }),
      requestable: fc.option(subset(['p-admin', 'p-write']), { nil: undefined }),
      ttlSeconds: fc.option(fc.constantFrom(120, 300, 900), { nil: undefined }),
    })
    .map(({ match, policies, requestable, ttlSeconds }) => {
      const rule = {
        name,
        match,
        ...(policies !== undefined && { policies }),
        ...(requestable !== undefined || policies === undefined ? { requestable: requestable ?? ['p-admin'] } : {}),
        ...(ttlSeconds !== undefined && { ttlSeconds }),
      } as RuleConfig;
      return rule;
    });

const rulesArb = fc.integer({ min: 0, max: 40 }).chain((count) => fc.tuple(...Array.from({ length: count }, (_, i) => ruleArb(`r${i}`))));

const identityArb = fc
  .record({
    issuerName: fc.constantFrom(...ISSUERS, 'unknown'),
    namespace: fc.option(fc.constantFrom(...NAMESPACES), { nil: undefined }),
    serviceAccount: fc.option(fc.constantFrom(...SERVICE_ACCOUNTS), { nil: undefined }),
    team: fc.constantFrom('orders', 'payments'),
    labels: fc.option(fc.constantFrom<Record<string, string>>({ team: 'payments' }, { tier: 'prod' }, {}), { nil: undefined }),
  })
  .map(({ issuerName, namespace, serviceAccount, team, labels }): WorkloadIdentity => ({
    issuerName,
    issuer: `https://${issuerName}.example`,
    subject: `system:serviceaccount:${namespace ?? '-'}:${serviceAccount ?? '-'}`,
    ...(namespace !== undefined && { namespace }),
    ...(serviceAccount !== undefined && { serviceAccount }),
    claims: { team },
    ...(labels !== undefined && { cluster: { namespaceLabels: labels } }),
  }));

describe('rule index', () => {
  it('generated rule sets are valid rule sets (the property below is about real configurations)', () => {
    fc.assert(
      fc.property(rulesArb, (rules) => rules.every((rule) => trustTierViolations(rule).length === 0)),
      { numRuns: 200 },
    );
  });

  it('the indexed evaluation returns exactly what a linear scan returns, on randomized rule sets and identities', () => {
    let granted = 0;
    let refused = 0;
    fc.assert(
      fc.property(rulesArb, fc.array(identityArb, { minLength: 1, maxLength: 5 }), (rules, identities) => {
        const indexed = compileRules(rules);
        const linear = compileRules(rules, { index: false });
        assert.ok(indexed.index !== undefined && linear.index === undefined);
        assert.equal(indexed.version, linear.version);
        for (const identity of identities) {
          const fast = evaluateRules(indexed, identity, LIFETIMES);
          const slow = evaluateRules(linear, identity, LIFETIMES);
          assert.deepStrictEqual(fast, slow);
          // As observers see them: serialized, and with the verdicts read.
          assert.equal(JSON.stringify(fast), JSON.stringify(slow));
          assert.equal(fast.verdicts.length, rules.length);
          if (fast.matchedRules.length > 0) granted += 1;
          else refused += 1;
        }
      }),
      { numRuns: 500 },
    );
    // The property is only as good as its inputs: both outcomes must have been exercised, many times.
    assert.ok(granted > 100 && refused > 100, `granted ${granted}, refused ${refused}`);
  });

  it('candidates are in rule order, each once, and every rule left out fails on issuer or namespace', () => {
    fc.assert(
      fc.property(rulesArb, identityArb, (rules, identity) => {
        const compiled = compileRules(rules);
        const candidates = candidateRules(compiled, identity.issuerName, identity.namespace);
        assert.deepEqual([...candidates], [...new Set(candidates)].sort((a, b) => a - b));
        const verdicts = evaluateRules(compiled, identity, LIFETIMES).verdicts;
        rules.forEach((rule, position) => {
          if (candidates.includes(position)) return;
          const verdict = verdicts[position];
          assert.equal(verdict?.matched, false, `${rule.name} left out but matched`);
          assert.match(verdict?.reason ?? '', /^(issuer|namespace|the token carries no namespace)/);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('with 1,000 per-namespace rules, an identity is matched against its own few, not all of them', () => {
    const rules: RuleConfig[] = Array.from({ length: 1000 }, (_, i) => ({
      name: `team-${i}`,
      match: { issuers: ['cluster-a'], namespaces: [`team-${i}`] },
      policies: [`team-${i}-read`],
    }));
    rules.push({ name: 'everyone', match: { namespaces: ['*'] }, policies: ['status-read'] });
    const compiled = compileRules(rules);
    assert.deepEqual(candidateRules(compiled, 'cluster-a', 'team-7'), [7, 1000]);
    assert.deepEqual(candidateRules(compiled, 'cluster-b', 'team-7'), [1000]);
    assert.deepEqual(candidateRules(compiled, 'cluster-a', undefined), [1000]);
    const identity: WorkloadIdentity = { issuerName: 'cluster-a', issuer: 'https://a', subject: 's', namespace: 'team-7', claims: {} };
    const decision = evaluateRules(compiled, identity, LIFETIMES);
    assert.deepEqual(decision.policies, ['team-7-read', 'status-read']);
    assert.deepEqual(decision.matchedRules, ['team-7', 'everyone']);
    assert.equal(decision.verdicts.length, 1001);
    assert.deepEqual(decision.verdicts[0], { rule: 'team-0', matched: false, reason: 'namespace "team-7" matches none of [team-0]' });
  });

  it('globs are bucketed by their literal prefix: only namespaces with that prefix reach them', () => {
    const compiled = compileRules([
      { name: 'team-1-envs', match: { namespaces: ['team-1-*'] }, policies: ['a'] },
      { name: 'team-1-exact-and-glob', match: { namespaces: ['team-1-dev', 'team-1*'] }, policies: ['b'] },
      { name: 'payments', match: { namespaces: ['payments'] }, policies: ['c'] },
      { name: 'suffix', match: { namespaces: ['*-dev'] }, policies: ['d'] },
    ]);
    assert.deepEqual(candidateRules(compiled, 'x', 'payments'), [2, 3]);
    assert.deepEqual(candidateRules(compiled, 'x', 'team-1-dev'), [0, 1, 3], 'reached twice, listed once');
    assert.deepEqual(candidateRules(compiled, 'x', 'team-1'), [1, 3]);
    assert.deepEqual(candidateRules(compiled, 'x', 'team-'), [3]);
  });

  it('a namespace that is literally "*" in a token is an exact name, not a wildcard', () => {
    const compiled = compileRules([
      { name: 'exact', match: { namespaces: ['payments'] }, policies: ['a'] },
      { name: 'glob', match: { namespaces: ['*'] }, policies: ['b'] },
    ]);
    assert.deepEqual(candidateRules(compiled, 'x', '*'), [1]);
  });
});
