import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { firstUnmatchedRequirement, type LabelSelector, type Labels } from '../../src/server/rules/label-selector.js';

const TEAM_PAYMENTS: Labels = { team: 'payments', tier: 'prod', 'kubernetes.io/metadata.name': 'payments' };

interface Case {
  readonly name: string;
  readonly selector: LabelSelector;
  readonly labels: Labels;
  /** undefined: the labels match; otherwise the exact first failing requirement. */
  readonly failure: string | undefined;
}

const cases: readonly Case[] = [
  // An empty selector selects everything, as metav1.LabelSelectorAsSelector of {} does.
  { name: 'empty selector, labels present', selector: {}, labels: TEAM_PAYMENTS, failure: undefined },
  { name: 'empty selector, no labels', selector: {}, labels: {}, failure: undefined },
  { name: 'empty matchLabels and matchExpressions', selector: { matchLabels: {}, matchExpressions: [] }, labels: {}, failure: undefined },

  // matchLabels: key=value, exact and case-sensitive
  { name: 'matchLabels equal', selector: { matchLabels: { team: 'payments' } }, labels: TEAM_PAYMENTS, failure: undefined },
  {
    name: 'matchLabels other value',
    selector: { matchLabels: { team: 'orders' } },
    labels: TEAM_PAYMENTS,
    failure: 'label team=orders required, found "payments"',
  },
  { name: 'matchLabels absent key', selector: { matchLabels: { owner: 'sre' } }, labels: TEAM_PAYMENTS, failure: 'label owner=sre required, found none' },
  {
    name: 'matchLabels is case-sensitive',
    selector: { matchLabels: { team: 'Payments' } },
    labels: TEAM_PAYMENTS,
    failure: 'label team=Payments required, found "payments"',
  },
  { name: 'matchLabels with an empty value matches an empty label', selector: { matchLabels: { flag: '' } }, labels: { flag: '' }, failure: undefined },
  { name: 'matchLabels with an empty value needs the key', selector: { matchLabels: { flag: '' } }, labels: {}, failure: 'label flag= required, found none' },
  {
    name: 'matchLabels with a prefixed key',
    selector: { matchLabels: { 'kubernetes.io/metadata.name': 'payments' } },
    labels: TEAM_PAYMENTS,
    failure: undefined,
  },
  { name: 'matchLabels no glob semantics', selector: { matchLabels: { team: 'pay*' } }, labels: TEAM_PAYMENTS, failure: 'label team=pay* required, found "payments"' },

  // In
  { name: 'In, value listed', selector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['orders', 'payments'] }] }, labels: TEAM_PAYMENTS, failure: undefined },
  {
    name: 'In, value not listed',
    selector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['orders', 'billing'] }] },
    labels: TEAM_PAYMENTS,
    failure: 'label team in (orders, billing) required',
  },
  {
    name: 'In, key absent',
    selector: { matchExpressions: [{ key: 'owner', operator: 'In', values: ['sre'] }] },
    labels: TEAM_PAYMENTS,
    failure: 'label owner in (sre) required',
  },

  // NotIn: an absent key matches (the API's semantics)
  { name: 'NotIn, value not listed', selector: { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['orders'] }] }, labels: TEAM_PAYMENTS, failure: undefined },
  {
    name: 'NotIn, value listed',
    selector: { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['orders', 'payments'] }] },
    labels: TEAM_PAYMENTS,
    failure: 'label team notin (orders, payments) required',
  },
  { name: 'NotIn, key absent matches', selector: { matchExpressions: [{ key: 'quarantine', operator: 'NotIn', values: ['true'] }] }, labels: TEAM_PAYMENTS, failure: undefined },
  { name: 'NotIn, no labels at all matches', selector: { matchExpressions: [{ key: 'quarantine', operator: 'NotIn', values: ['true'] }] }, labels: {}, failure: undefined },

  // Exists / DoesNotExist look at the key only
  { name: 'Exists, key present', selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels: TEAM_PAYMENTS, failure: undefined },
  { name: 'Exists, key present with empty value', selector: { matchExpressions: [{ key: 'flag', operator: 'Exists' }] }, labels: { flag: '' }, failure: undefined },
  { name: 'Exists, key absent', selector: { matchExpressions: [{ key: 'owner', operator: 'Exists' }] }, labels: TEAM_PAYMENTS, failure: 'label owner required' },
  { name: 'DoesNotExist, key absent', selector: { matchExpressions: [{ key: 'quarantine', operator: 'DoesNotExist' }] }, labels: TEAM_PAYMENTS, failure: undefined },
  {
    name: 'DoesNotExist, key present',
    selector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] },
    labels: TEAM_PAYMENTS,
    failure: 'label tier must be absent',
  },
  {
    name: 'DoesNotExist, key present with empty value',
    selector: { matchExpressions: [{ key: 'flag', operator: 'DoesNotExist' }] },
    labels: { flag: '' },
    failure: 'label flag must be absent',
  },

  // Several requirements are ANDed; the first failing one is reported, matchLabels before expressions.
  {
    name: 'all requirements hold',
    selector: {
      matchLabels: { team: 'payments' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['prod', 'staging'] },
        { key: 'quarantine', operator: 'DoesNotExist' },
        { key: 'team', operator: 'NotIn', values: ['evil'] },
        { key: 'kubernetes.io/metadata.name', operator: 'Exists' },
      ],
    },
    labels: TEAM_PAYMENTS,
    failure: undefined,
  },
  {
    name: 'one expression of several fails',
    selector: {
      matchLabels: { team: 'payments' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['prod'] },
        { key: 'tier', operator: 'NotIn', values: ['prod'] },
      ],
    },
    labels: TEAM_PAYMENTS,
    failure: 'label tier notin (prod) required',
  },
  {
    name: 'matchLabels fails before a failing expression',
    selector: { matchLabels: { team: 'orders' }, matchExpressions: [{ key: 'owner', operator: 'Exists' }] },
    labels: TEAM_PAYMENTS,
    failure: 'label team=orders required, found "payments"',
  },
  {
    name: 'two matchLabels pairs, the second fails',
    selector: { matchLabels: { team: 'payments', tier: 'staging' } },
    labels: TEAM_PAYMENTS,
    failure: 'label tier=staging required, found "prod"',
  },
];

describe('firstUnmatchedRequirement: Kubernetes label selector semantics', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(firstUnmatchedRequirement(c.selector, c.labels), c.failure);
    });
  }
});

describe('firstUnmatchedRequirement: members of Object.prototype are not labels', () => {
  const noLabels: Labels = {};

  for (const key of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    it(`Exists "${key}" does not match an object without that label`, () => {
      assert.equal(firstUnmatchedRequirement({ matchExpressions: [{ key, operator: 'Exists' }] }, noLabels), `label ${key} required`);
    });

    it(`DoesNotExist "${key}" matches an object without that label`, () => {
      assert.equal(firstUnmatchedRequirement({ matchExpressions: [{ key, operator: 'DoesNotExist' }] }, noLabels), undefined);
    });

    it(`NotIn "${key}" matches an object without that label`, () => {
      assert.equal(firstUnmatchedRequirement({ matchExpressions: [{ key, operator: 'NotIn', values: ['x'] }] }, noLabels), undefined);
    });

    it(`In "${key}" does not match an object without that label`, () => {
      assert.equal(
        firstUnmatchedRequirement({ matchExpressions: [{ key, operator: 'In', values: ['x'] }] }, noLabels),
        `label ${key} in (x) required`,
      );
    });
  }

  it('matchLabels {constructor: ...} is not satisfied by Object.prototype.constructor', () => {
    assert.equal(
      firstUnmatchedRequirement({ matchLabels: { constructor: 'function Object() { [native code] }' } }, noLabels),
      'label constructor=function Object() { [native code] } required, found none',
    );
  });

  it('a matchLabels "__proto__" key (own, as JSON or YAML parsing makes it) needs an own label', () => {
    const selector: LabelSelector = { matchLabels: JSON.parse('{"__proto__":"x"}') as Record<string, string> };
    assert.equal(firstUnmatchedRequirement(selector, noLabels), 'label __proto__=x required, found none');
  });

  it('an own label named "constructor" is a label like any other', () => {
    const labels: Labels = { constructor: 'yes' };
    assert.equal(firstUnmatchedRequirement({ matchLabels: { constructor: 'yes' } }, labels), undefined);
    assert.equal(firstUnmatchedRequirement({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, labels), undefined);
    assert.equal(firstUnmatchedRequirement({ matchExpressions: [{ key: 'constructor', operator: 'DoesNotExist' }] }, labels), 'label constructor must be absent');
  });

  it('labels with a null prototype behave the same', () => {
    const labels = Object.assign(Object.create(null) as Record<string, string>, { team: 'payments' });
    assert.equal(firstUnmatchedRequirement({ matchLabels: { team: 'payments' } }, labels), undefined);
    assert.equal(firstUnmatchedRequirement({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, labels), 'label constructor required');
  });
});
