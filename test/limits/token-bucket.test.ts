import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { takeToken, type BucketDecision, type BucketState } from '../../src/server/limits/token-bucket.js';

const bucket = (tokens: number, updatedAt: number): BucketState => ({ tokens, updatedAt });
/** An allowed take leaves the bucket at `tokens` as of `updatedAt`; there is nothing to wait for. */
const allowed = (tokens: number, updatedAt: number): BucketDecision => ({ allowed: true, state: bucket(tokens, updatedAt), retryAfterMs: 0 });
const refused = (tokens: number, updatedAt: number, retryAfterMs: number): BucketDecision => ({ allowed: false, state: bucket(tokens, updatedAt), retryAfterMs });

// One case a line, so what differs between cases reads down the columns:
// [name, the bucket before (undefined: none yet), nowMs, ratePerSecond, burst, the expected decision]
const cases: ReadonlyArray<readonly [string, BucketState | undefined, number, number, number, BucketDecision]> = [
  ['a new bucket starts full and gives one token', undefined, 5_000, 1, 3, allowed(2, 5_000)],
  ['a new bucket with burst 1 is empty after one take', undefined, 0, 1, 1, allowed(0, 0)],
  ['exactly one token left is enough', bucket(1, 1_000), 1_000, 1, 5, allowed(0, 1_000)],
  ['an empty bucket refuses, retry when one token has refilled', bucket(0, 1_000), 1_000, 1, 2, refused(0, 1_000, 1_000)],
  ['half a token refuses with half the interval to wait', bucket(0.5, 0), 0, 1, 2, refused(0.5, 0, 500)],
  ['refill is proportional to elapsed time', bucket(0, 0), 500, 1, 2, refused(0.5, 500, 500)],
  ['a full interval refills one token, which is taken', bucket(0, 0), 1_000, 1, 2, allowed(0, 1_000)],
  ['refill never exceeds burst, however long the bucket was idle', bucket(0, 0), 3_600_000, 1, 2, allowed(1, 3_600_000)],
  ['a bucket holding more than a lowered burst is capped to it', bucket(10, 0), 0, 1, 2, allowed(1, 0)],
  ['a clock that went backwards refills nothing and does not move the bucket back in time', bucket(0.25, 10_000), 9_000, 1, 2, refused(0.25, 10_000, 750)],
  ['retry-after rounds up to the next millisecond (rate 3/s)', bucket(0, 0), 0, 3, 1, refused(0, 0, 334)],
  ['a slow rate (60 per hour) waits a minute per token', bucket(0, 0), 0, 1 / 60, 1, refused(0, 0, 60_000)],
  ['a fast rate (100/s) refills a token every 10 ms', bucket(0, 0), 10, 100, 5, allowed(0, 10)],
];

describe('takeToken', () => {
  for (const [name, state, nowMs, ratePerSecond, burst, expected] of cases) {
    it(name, () => {
      assert.deepEqual(takeToken(state, nowMs, ratePerSecond, burst), expected);
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
