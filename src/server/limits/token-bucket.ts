/** State of one token bucket: tokens left (fractional) at a moment in ms. */
export interface BucketState {
  readonly tokens: number;
  readonly updatedAt: number;
}

export interface BucketDecision {
  readonly allowed: boolean;
  readonly state: BucketState;
  /** When refused: milliseconds until one token is available. */
  readonly retryAfterMs: number;
}

/**
 * Takes one token from a bucket refilled at `ratePerSecond` up to `burst`. Pure; the Redis Lua script in
 * redis-mint-rate-limiter.ts implements the same arithmetic so replicas and the memory limiter agree.
 */
export function takeToken(state: BucketState | undefined, nowMs: number, ratePerSecond: number, burst: number): BucketDecision {
  const previous = state ?? { tokens: burst, updatedAt: nowMs };
  const elapsed = Math.max(0, nowMs - previous.updatedAt);
  // Never move the bucket back in time: a clock running behind would otherwise earn the same refill twice.
  const at = Math.max(nowMs, previous.updatedAt);
  const tokens = Math.min(burst, previous.tokens + (elapsed * ratePerSecond) / 1000);
  if (tokens >= 1) return { allowed: true, state: { tokens: tokens - 1, updatedAt: at }, retryAfterMs: 0 };
  return { allowed: false, state: { tokens, updatedAt: at }, retryAfterMs: Math.ceil(((1 - tokens) * 1000) / ratePerSecond) };
}
