import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { caseMismatch, parseRuleTestCases, type CaseExpectation } from '../../src/tools/explain/rule-test-cases.js';
import type { DeniedOutcome, GrantedOutcome } from '../../src/server/explain/explain-decision.js';

const IDENTITY = { issuer: 'in-cluster', namespace: 'payments', serviceAccount: 'runner', pod: 'p' };

describe('parseRuleTestCases', () => {
  it('accepts inline identities and file references, a scope as text or a list, and both expectations', () => {
    const result = parseRuleTestCases({
      cases: [
        { name: 'inline', identity: IDENTITY, scope: 'a  b', audience: 'tyk', expect: { policies: ['a', 'b'] } },
        { name: 'file', identity: { file: 'identities/x.yaml' }, scope: ['a'], expect: { denied: 'scope_not_granted' } },
      ],
    });
    assert.deepEqual(result, {
      ok: true,
      cases: [
        {
          name: 'inline',
          identity: { fixture: IDENTITY },
          identityPath: ['cases', 0, 'identity'],
          scope: ['a', 'b'],
          audience: 'tyk',
          expect: { policies: ['a', 'b'] },
        },
        {
          name: 'file',
          identity: { file: 'identities/x.yaml' },
          identityPath: ['cases', 1, 'identity'],
          scope: ['a'],
          audience: undefined,
          expect: { denied: 'scope_not_granted' },
        },
      ],
    });
  });

  const problems: readonly { name: string; document: unknown; problems: { path: string; message: string }[] }[] = [
    { name: 'no cases key', document: [{ name: 'x' }], problems: [{ path: '(root)', message: 'expected object, received array' }] },
    { name: 'an empty list', document: { cases: [] }, problems: [{ path: 'cases', message: 'Too small: expected array to have >=1 items' }] },
    {
      name: 'both expectations',
      document: { cases: [{ name: 'x', identity: IDENTITY, expect: { policies: ['a'], denied: 'no_matching_rule' } }] },
      problems: [{ path: 'cases[0].expect', message: 'give exactly one of policies or denied' }],
    },
    {
      name: 'an unknown reason code',
      document: { cases: [{ name: 'x', identity: IDENTITY, expect: { denied: 'nope' } }] },
      problems: [
        {
          path: 'cases[0].expect.denied',
          message: 'must be a reason code of POST /token, such as no_matching_rule, scope_not_granted, audience_not_allowed, missing_claim, not_pod_bound or workflow_completed',
        },
      ],
    },
    {
      name: 'a problem inside the inline identity, a duplicate name and an empty scope',
      document: {
        cases: [
          { name: 'x', identity: IDENTITY, expect: { policies: ['a'] } },
          { name: 'x', identity: { ...IDENTITY, namespace: undefined }, scope: ' ', expect: { policies: ['a'] } },
        ],
      },
      problems: [
        { path: 'cases[1].name', message: 'duplicate case name "x"' },
        { path: 'cases[1].identity.namespace', message: 'required (or give the full token claims under claims)' },
        { path: 'cases[1].scope', message: 'is empty' },
      ],
    },
    {
      name: 'a file reference that is not a path',
      document: { cases: [{ name: 'x', identity: { file: 3 }, expect: { policies: ['a'] } }] },
      problems: [{ path: 'cases[0].identity.file', message: 'must be the path of an identity fixture file' }],
    },
  ];
  for (const c of problems) {
    it(`problem: ${c.name}`, () => {
      const result = parseRuleTestCases(c.document);
      assert.equal(result.ok, false);
      const got = result.ok ? [] : result.problems;
      assert.deepEqual(got, c.problems);
    });
  }
});

describe('caseMismatch: one line saying what differed', () => {
  const granted = (policies: string[]): GrantedOutcome => ({ decision: 'granted', policies, audience: 'tyk', ttlSeconds: 300, claims: {} });
  const denied: DeniedOutcome = { decision: 'denied', reason: 'no_matching_rule', description: 'No policy is granted to this workload identity.' };
  const cases: readonly { name: string; expect: CaseExpectation; outcome: GrantedOutcome | DeniedOutcome; mismatch: string | undefined }[] = [
    { name: 'the same policies in another order', expect: { policies: ['b', 'a'] }, outcome: granted(['a', 'b']), mismatch: undefined },
    {
      name: 'a policy missing and one unexpected',
      expect: { policies: ['a', 'b'] },
      outcome: granted(['a', 'c']),
      mismatch: 'expected policies [a b], got granted [a c]: missing b; unexpected c',
    },
    {
      name: 'expected policies, got denied',
      expect: { policies: ['a'] },
      outcome: denied,
      mismatch: 'expected policies [a], got denied no_matching_rule (No policy is granted to this workload identity.)',
    },
    { name: 'the expected denial', expect: { denied: 'no_matching_rule' }, outcome: denied, mismatch: undefined },
    {
      name: 'another denial',
      expect: { denied: 'scope_not_granted' },
      outcome: denied,
      mismatch: 'expected denied scope_not_granted, got denied no_matching_rule (No policy is granted to this workload identity.)',
    },
    { name: 'expected a denial, got a grant', expect: { denied: 'no_matching_rule' }, outcome: granted(['a']), mismatch: 'expected denied no_matching_rule, got granted [a]' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(caseMismatch(c.expect, c.outcome), c.mismatch));
  }
});
