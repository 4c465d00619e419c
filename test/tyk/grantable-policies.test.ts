import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { grantablePolicies, type GrantablePolicies } from '../../src/tools/tyk-kit/grantable-policies.js';

interface Case {
  readonly name: string;
  readonly rules: Parameters<typeof grantablePolicies>[0];
  readonly expected: GrantablePolicies;
}

const cases: readonly Case[] = [
  { name: 'one rule: its policies in order', rules: [{ policies: ['b', 'a'] }], expected: { grantable: ['b', 'a'], templated: [] } },
  {
    name: 'several rules: the union, first occurrence first',
    rules: [{ policies: ['payments-read', 'payments-write'] }, { policies: ['ledger-write', 'payments-read'] }, { policies: ['status-read'] }],
    expected: { grantable: ['payments-read', 'payments-write', 'ledger-write', 'status-read'], templated: [] },
  },
  {
    name: 'a policy containing "{" is a template, listed apart and once',
    rules: [{ policies: ['{namespace.labels.team}-read', 'status-read'] }, { policies: ['{namespace.labels.team}-read', 'x{y'] }],
    expected: { grantable: ['status-read'], templated: ['{namespace.labels.team}-read', 'x{y'] },
  },
  { name: 'only templates: nothing grantable', rules: [{ policies: ['{team}'] }], expected: { grantable: [], templated: ['{team}'] } },
  {
    name: 'requestable policies can be granted too, after the rule\'s own',
    rules: [{ policies: ['a'], requestable: ['b', 'a'] }, { requestable: ['{team}-admin', 'c'] }],
    expected: { grantable: ['a', 'b', 'c'], templated: ['{team}-admin'] },
  },
  { name: 'a rule without policies contributes nothing', rules: [{}, { policies: ['a'] }], expected: { grantable: ['a'], templated: [] } },
  { name: 'a closing brace alone is literal', rules: [{ policies: ['a}'] }], expected: { grantable: ['a}'], templated: [] } },
];

describe('grantablePolicies', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(grantablePolicies(c.rules), c.expected);
    });
  }
});
