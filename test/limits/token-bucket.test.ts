import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { takeToken, type BucketDecision, type BucketState } from '../../src/limits/token-bucket.js';

interface Case {
  readonly name: string;
  readonly state: BucketState | undefined;
  readonly nowMs: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly expected: BucketDecision;
}

const cases: readonly Case[] = [
  {
    name: 'a new bucket starts full and gives one token',
    state: undefined,
    nowMs: 5_000,
    ratePerSecond: 1,
    burst: 3,
    expected: { allowed: true, state: { tokens: 2, updatedAt: 5_000 }, retryAfterMs: 0 },
  },
  {
    name: 'a new bucket with burst 1 is empty after one take',
    state: undefined,
    nowMs: 0,
    ratePerSecond: 1,
    burst: 1,
    expected: { allowed: true, state: { tokens: 0, updatedAt: 0 }, retryAfterMs: 0 },
  },
  {
    name: 'exactly one token left is enough',
    state: { tokens: 1, updatedAt: 1_000 },
    nowMs: 1_000,
    ratePerSecond: 1,
    burst: 5,
    expected: { allowed: true, state: { tokens: 0, updatedAt: 1_000 }, retryAfterMs: 0 },
  },
  {
    name: 'an empty bucket refuses, retry when one token has refilled',
    state: { tokens: 0, updatedAt: 1_000 },
    nowMs: 1_000,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: false, state: { tokens: 0, updatedAt: 1_000 }, retryAfterMs: 1_000 },
  },
  {
    name: 'half a token refuses with half the interval to wait',
    state: { tokens: 0.5, updatedAt: 0 },
    nowMs: 0,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: false, state: { tokens: 0.5, updatedAt: 0 }, retryAfterMs: 500 },
  },
  {
    name: 'refill is proportional to elapsed time',
    state: { tokens: 0, updatedAt: 0 },
    nowMs: 500,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: false, state: { tokens: 0.5, updatedAt: 500 }, retryAfterMs: 500 },
  },
  {
    name: 'a full interval refills one token, which is taken',
    state: { tokens: 0, updatedAt: 0 },
    nowMs: 1_000,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: true, state: { tokens: 0, updatedAt: 1_000 }, retryAfterMs: 0 },
  },
  {
    name: 'refill never exceeds burst, however long the bucket was idle',
    state: { tokens: 0, updatedAt: 0 },
    nowMs: 3_600_000,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: true, state: { tokens: 1, updatedAt: 3_600_000 }, retryAfterMs: 0 },
  },
  {
    name: 'a bucket holding more than a lowered burst is capped to it',
    state: { tokens: 10, updatedAt: 0 },
    nowMs: 0,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: true, state: { tokens: 1, updatedAt: 0 }, retryAfterMs: 0 },
  },
  {
    name: 'a clock that went backwards refills nothing and does not move the bucket back in time',
    state: { tokens: 0.25, updatedAt: 10_000 },
    nowMs: 9_000,
    ratePerSecond: 1,
    burst: 2,
    expected: { allowed: false, state: { tokens: 0.25, updatedAt: 10_000 }, retryAfterMs: 750 },
  },
  {
    name: 'retry-after rounds up to the next millisecond (rate 3/s)',
    state: { tokens: 0, updatedAt: 0 },
    nowMs: 0,
    ratePerSecond: 3,
    burst: 1,
    expected: { allowed: false, state: { tokens: 0, updatedAt: 0 }, retryAfterMs: 334 },
  },
  {
    name: 'a slow rate (60 per hour) waits a minute per token',
    state: { tokens: 0, updatedAt: 0 },
    nowMs: 0,
    ratePerSecond: 1 / 60,
    burst: 1,
    expected: { allowed: false, state: { tokens: 0, updatedAt: 0 }, retryAfterMs: 60_000 },
  },
  {
    name: 'a fast rate (100/s) refills a token every 10 ms',
    state: { tokens: 0, updatedAt: 0 },
    nowMs: 10,
    ratePerSecond: 100,
    burst: 5,
    expected: { allowed: true, state: { tokens: 0, updatedAt: 10 }, retryAfterMs: 0 },
  },
];

describe('takeToken', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(takeToken(c.state, c.nowMs, c.ratePerSecond, c.burst), c.expected);
    });
  }

  it('is pure: the state passed in is not changed', () => {
    const state = Object.freeze({ tokens: 1.5, updatedAt: 0 });
    const first = takeToken(state, 1_000, 1, 3);
    const again = takeToken(state, 1_000, 1, 3);
    assert.deepEqual(first, again);
    assert.deepEqual(state, { tokens: 1.5, updatedAt: 0 });
  });

  it('a sequence: burst 2 at 1/s allows two at once, then one per second', () => {
    const steps: readonly [number, boolean, number][] = [
      // [nowMs, allowed, retryAfterMs]
      [0, true, 0],
      [0, true, 0],
      [0, false, 1_000],
      [500, false, 500],
      [1_000, true, 0],
      [1_000, false, 1_000],
      [2_000, true, 0],
      [10_000, true, 0],
      [10_000, true, 0],
      [10_000, false, 1_000],
    ];
    let state: BucketState | undefined;
    for (const [nowMs, allowed, retryAfterMs] of steps) {
      const decision = takeToken(state, nowMs, 1, 2);
      assert.deepEqual([nowMs, decision.allowed, decision.retryAfterMs], [nowMs, allowed, retryAfterMs]);
      state = decision.state;
    }
  });

  it('a refused take does not consume: waiting the advertised retry-after is always enough', () => {
    for (const [rate, burst] of [
      [1, 1],
      [1 / 3, 2],
      [7 / 60, 3],
      [1000 / 60, 20],
    ] as const) {
      let state: BucketState | undefined;
      let now = 0;
      for (let i = 0; i < burst; i++) state = takeToken(state, now, rate, burst).state;
      for (let i = 0; i < 50; i++) {
        const refused = takeToken(state, now, rate, burst);
        assert.equal(refused.allowed, false, `rate ${rate} step ${i}: empty bucket refuses`);
        now += refused.retryAfterMs;
        const retried = takeToken(refused.state, now, rate, burst);
        assert.equal(retried.allowed, true, `rate ${rate} step ${i}: allowed after waiting ${refused.retryAfterMs} ms`);
        state = retried.state;
      }
    }
  });
});
