import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, compileGlobs } from '../../src/server/rules/glob.js';

// [pattern, value, expected]
const CASES: readonly (readonly [string, string, boolean])[] = [
  // literal: exact, anchored at both ends
  ['payments', 'payments', true],
  ['payments', 'payments-dev', false],
  ['payments', 'my-payments', false],
  ['payments', 'Payments', false],
  ['payments', '', false],
  // a star never matches a control character (issue: `payments-*` must not match `payments-\n...`)
  ['payments-*', 'payments-\nadmin', false],
  ['payments-*', 'payments-a\u0000', false],
  ['payments-*', 'payments-\u007f', false],
  ['payments-*', 'payments-\u0085', false],
  ['*', 'a\tb', false],
  ['*-ci', '\r-ci', false],
  ['argo-*-runner', 'argo-\n-runner', false],
  ['*', 'paymënts', true],
  // prefix
  ['payments-*', 'payments-dev', true],
  ['payments-*', 'payments-', true],
  ['payments-*', 'payments', false],
  ['payments-*', 'xpayments-dev', false],
  // suffix
  ['*-ci', 'orders-ci', true],
  ['*-ci', '-ci', true],
  ['*-ci', 'orders-ci-2', false],
  ['*-ci', 'ci', false],
  // infix
  ['argo-*-runner', 'argo-orders-runner', true],
  ['argo-*-runner', 'argo--runner', true],
  ['argo-*-runner', 'argo-runner', false],
  ['argo-*-runner', 'argo-orders-runner-x', false],
  ['ab*ba', 'aba', false], // prefix and suffix may not overlap
  ['ab*ba', 'abba', true],
  ['a*a', 'a', false],
  ['a*a', 'aa', true],
  // many stars
  ['*a*b*c*', 'xaybzcw', true],
  ['*a*b*c*', 'abc', true],
  ['*a*b*c*', 'cba', false],
  ['a*b*c', 'abbbc', true],
  ['a*b*c', 'acb', false],
  ['a*b*b*c', 'abc', false],
  ['a*b*b*c', 'abbc', true],
  ['a**b', 'ab', true],
  ['a**b', 'axyzb', true],
  // only stars: anything, including empty
  ['*', '', true],
  ['*', 'anything at all', true],
  ['***', '', true],
  ['***', 'x', true],
  // empty pattern matches only the empty value
  ['', '', true],
  ['', 'x', false],
  // regular-expression and shell metacharacters are literal
  ['a.b', 'a.b', true],
  ['a.b', 'axb', false],
  ['a?c', 'a?c', true],
  ['a?c', 'abc', false],
  ['[ab]', '[ab]', true],
  ['[ab]', 'a', false],
  ['{a,b}', '{a,b}', true],
  ['{a,b}', 'a', false],
  ['a+', 'aa', false],
  ['^a$', '^a$', true],
  ['(x|y)', 'x', false],
  ['a\\*', 'a\\anything', true], // a backslash does not escape the star
  ['a\\*', 'a*', false],
  ['*.example.com', 'api.example.com', true],
  ['*.example.com', 'apixexample.com', false],
  ['ns-[0-9]*', 'ns-[0-9]-x', true],
  ['ns-[0-9]*', 'ns-5', false],
];

describe('compileGlob', () => {
  for (const [pattern, value, expected] of CASES) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(value)}`, () => {
      assert.equal(compileGlob(pattern)(value), expected);
    });
  }

  it('finishes correctly on a long value against a pattern with many stars', () => {
    const pattern = `${'a*'.repeat(64)}b`;
    const miss = 'a'.repeat(100_000);
    const hit = `${miss}b`;
    const matches = compileGlob(pattern);
    assert.equal(matches(miss), false);
    assert.equal(matches(hit), true);
  });

  it('finishes correctly on many segments that each occur late in a long value', () => {
    const segments = Array.from({ length: 50 }, (_, i) => `s${i}`);
    const pattern = `*${segments.join('*')}*`;
    const filler = 'x'.repeat(1000);
    const value = segments.map((s) => filler + s).join('');
    assert.equal(compileGlob(pattern)(value), true);
    assert.equal(compileGlob(pattern)(value.replace('s49', 's4_9')), false);
  });
});

describe('compileGlobs', () => {
  it('accepts a value matching any pattern of the list', () => {
    const matches = compileGlobs(['payments', 'payments-*', 'orders']);
    assert.equal(matches('payments'), true);
    assert.equal(matches('payments-staging'), true);
    assert.equal(matches('orders'), true);
    assert.equal(matches('orders-dev'), false);
  });

  it('an empty list matches nothing', () => {
    assert.equal(compileGlobs([])('anything'), false);
    assert.equal(compileGlobs([])(''), false);
  });
});
