import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DENY_FACETS,
  MAX_REASON_LENGTH,
  denyFromRequest,
  denyKind,
  parseDenyDuration,
  parseStoredDeny,
  sanitizeReason,
  type Deny,
  type DenyFacet,
} from '../../src/server/deny/deny.js';
import { denyMatches, type DenySubject } from '../../src/server/deny/deny-match.js';
import { DenySnapshot } from '../../src/server/deny/deny-snapshot.js';
import { denySubjectOf } from '../../src/server/deny/deny-subject.js';
import { ARGO_WORKFLOW_LABEL } from '../../src/server/identity/workload-identity.js';
import { PAYMENTS_RUNNER } from '../support/workload-identities.js';

const NOW = Date.UTC(2026, 11, 7, 10, 0, 0);

function deny(match: Deny['match'], until: number | undefined = NOW + 3_600_000, id = 'd1'): Deny {
  return { id, match, until, reason: 'incident 42', createdAt: NOW, createdBy: 'test' };
}

describe('deny durations', () => {
  for (const [text, ms] of [['90s', 90_000], ['30m', 1_800_000], ['2h', 7_200_000], ['7d', 604_800_000], ['30d', 2_592_000_000]] as const) {
    it(`${text} is ${ms} ms`, () => assert.equal(parseDenyDuration(text), ms));
  }
  for (const text of ['', '0m', '31d', '721h', '1w', '-5m', '5', 'm', '1.5h', ' 5m', '5m ', '05m', '99999999d']) {
    it(`${JSON.stringify(text)} is refused`, () => assert.equal(parseDenyDuration(text), undefined));
  }
});

describe('deny reasons', () => {
  it('control characters, newlines and bidi overrides become single spaces; the result is trimmed and bounded', () => {
    assert.equal(sanitizeReason('  line one\nline two\r\n\u001b[31mred\u202e  '), 'line one line two [31mred');
    assert.equal([...sanitizeReason('x'.repeat(500))].length, MAX_REASON_LENGTH);
  });
  it('property: a sanitized reason has no control or format characters, and sanitizing again changes nothing', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        const once = sanitizeReason(text);
        assert.doesNotMatch(once, /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
        assert.ok([...once].length <= MAX_REASON_LENGTH);
        assert.equal(sanitizeReason(once), once);
      }),
    );
  });
});

describe('a deny request', () => {
  const context = { id: 'abc', now: NOW, createdBy: 'alice' };
  it('becomes a deny expiring DURATION from now, with the reason sanitized', () => {
    const parsed = denyFromRequest({ match: { namespace: 'payments' }, until: '2h', reason: 'leak\nsuspected' }, context);
    assert.deepEqual(parsed, { ok: true, deny: { id: 'abc', match: { namespace: 'payments' }, until: NOW + 7_200_000, reason: 'leak suspected', createdAt: NOW, createdBy: 'alice' } });
  });
  const refusals: [string, Parameters<typeof denyFromRequest>[0], string][] = [
    ['no facet', { match: {}, until: '1h', reason: 'x' }, 'match'],
    ['an unknown facet', { match: { pod: 'x' }, until: '1h', reason: 'x' }, 'match.pod'],
    ['a facet with a space', { match: { namespace: 'a b' }, until: '1h', reason: 'x' }, 'match.namespace'],
    ['a non-string facet', { match: { namespace: 7 }, until: '1h', reason: 'x' }, 'match.namespace'],
    ['no duration', { match: { namespace: 'a' }, until: undefined, reason: 'x' }, 'until'],
    ['a duration over 30 days', { match: { namespace: 'a' }, until: '31d', reason: 'x' }, 'until'],
    ['a reason of control characters only', { match: { namespace: 'a' }, until: '1h', reason: '\n\t\u0000' }, 'reason'],
    ['a match that is an array', { match: ['namespace'], until: '1h', reason: 'x' }, 'match'],
  ];
  for (const [what, request, field] of refusals) {
    it(`with ${what} is refused at ${field}`, () => {
      const parsed = denyFromRequest(request, context);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.ok(parsed.problems.some((p) => p.field === field), JSON.stringify(parsed.problems));
    });
  }
});

describe('stored denies', () => {
  it('round-trip through JSON', () => {
    const value = deny({ namespace: 'payments', serviceAccount: 'argo-runner' });
    assert.deepEqual(parseStoredDeny(JSON.parse(JSON.stringify(value))), { ok: true, deny: value });
  });
  for (const [what, value] of [
    ['null', null],
    ['an array', []],
    ['no match', { id: 'x', reason: 'r', createdAt: 1, createdBy: 'a' }],
    ['an empty match (would match everything)', { id: 'x', match: {}, reason: 'r', createdAt: 1, createdBy: 'a' }],
    ['an empty facet', { id: 'x', match: { namespace: '' }, reason: 'r', createdAt: 1, createdBy: 'a' }],
    ['a reason with a newline', { id: 'x', match: { namespace: 'a' }, reason: 'a\nb', createdAt: 1, createdBy: 'a' }],
    ['a string until', { id: 'x', match: { namespace: 'a' }, until: 'soon', reason: 'r', createdAt: 1, createdBy: 'a' }],
    ['a bad id', { id: 'x y', match: { namespace: 'a' }, reason: 'r', createdAt: 1, createdBy: 'a' }],
  ] as const) {
    it(`refuse ${what}`, () => assert.equal(parseStoredDeny(value).ok, false));
  }
});

describe('deny matching', () => {
  it('is exact: a facet that looks like a glob matches only itself', () => {
    const glob = deny({ namespace: 'pay*' });
    assert.equal(denyMatches(glob, { namespace: 'payments' }, NOW), false);
    assert.equal(denyMatches(glob, { namespace: 'pay*' }, NOW), true);
    assert.equal(denyMatches(deny({ namespace: '*' }), { namespace: 'payments' }, NOW), false);
  });
  it('needs every facet it names; a facet the identity lacks does not match', () => {
    const both = deny({ namespace: 'payments', serviceAccount: 'argo-runner' });
    assert.equal(denyMatches(both, { namespace: 'payments', serviceAccount: 'argo-runner', issuer: 'c' }, NOW), true);
    assert.equal(denyMatches(both, { namespace: 'payments', serviceAccount: 'other' }, NOW), false);
    assert.equal(denyMatches(deny({ workflow: 'wf-1' }), { namespace: 'payments' }, NOW), false);
  });
  it('stops at `until`', () => {
    const d = deny({ namespace: 'payments' }, NOW + 1000);
    assert.equal(denyMatches(d, { namespace: 'payments' }, NOW + 999), true);
    assert.equal(denyMatches(d, { namespace: 'payments' }, NOW + 1000), false);
  });
  it('kind names the facets in a fixed order', () => {
    assert.equal(denyKind(deny({ serviceAccount: 'a', issuer: 'b' })), 'issuer+serviceAccount');
  });
  it('judges the issuer name, namespace, service account and Argo workflow of an identity', () => {
    const identity = { ...PAYMENTS_RUNNER, cluster: { podLabels: { [ARGO_WORKFLOW_LABEL]: 'orders-sync-x7k2p' } } };
    assert.deepEqual(denySubjectOf(identity), { issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'argo-runner', workflow: 'orders-sync-x7k2p' });
  });

  // Properties over small alphabets, so that matches and near misses are both frequent.
  const value = fc.constantFrom('a', 'b', 'pay*', '*');
  const subjectArb: fc.Arbitrary<DenySubject> = fc.record(
    Object.fromEntries(DENY_FACETS.map((facet) => [facet, value])) as Record<DenyFacet, fc.Arbitrary<string>>,
    { requiredKeys: [] },
  );
  const matchArb = subjectArb.filter((match) => Object.keys(match).length > 0);
  const untilArb = fc.option(fc.integer({ min: NOW - 10_000, max: NOW + 10_000 }), { nil: undefined });
  const nowArb = fc.integer({ min: NOW - 10_000, max: NOW + 10_000 });

  it('property: a deny refuses exactly the identities whose facets equal every facet it names, while in force', () => {
    fc.assert(
      fc.property(matchArb, untilArb, subjectArb, nowArb, (match, until, subject, now) => {
        const d = deny(match, until);
        const agrees = Object.entries(match).every(([facet, wanted]) => subject[facet as DenyFacet] === wanted);
        const inForce = until === undefined || now < until;
        assert.equal(denyMatches(d, subject, now), agrees && inForce);
      }),
    );
  });
  it('property: an identity carrying every facet of a deny is refused by it until it expires, and never after', () => {
    fc.assert(
      fc.property(matchArb, subjectArb, nowArb, fc.integer({ min: 1, max: 10_000 }), (match, extra, now, life) => {
        const d = deny(match, now + life);
        const subject = { ...extra, ...match };
        assert.equal(denyMatches(d, subject, now), true);
        assert.equal(denyMatches(d, subject, now + life), false);
      }),
    );
  });
  it('property: a snapshot refuses a workload iff one of its non-jti denies matches, and revokes a token iff a jti deny matches', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(matchArb, untilArb), { maxLength: 6 }), subjectArb, nowArb, (entries, subject, now) => {
        const denies = entries.map(([match, until], i) => deny(match, until, `d${i}`));
        const snapshot = new DenySnapshot(denies.slice(0, 2), denies.slice(2));
        const { jti, ...workload } = subject;
        const refusing = snapshot.refusing(workload, now);
        const expected = denies.some((d) => d.match.jti === undefined && denyMatches(d, workload, now));
        assert.equal(refusing !== undefined, expected);
        if (refusing !== undefined) assert.equal(denyMatches(refusing, workload, now), true);
        if (jti !== undefined) {
          const revoking = snapshot.revoking(jti, workload, now);
          assert.equal(revoking !== undefined, denies.some((d) => d.match.jti !== undefined && denyMatches(d, { ...workload, jti }, now)));
        }
      }),
    );
  });
  it('an empty snapshot says so', () => {
    assert.equal(new DenySnapshot([], []).empty, true);
    assert.equal(new DenySnapshot([], [deny({ jti: 'x' })]).empty, false);
  });
});
