import { BoundedLru } from '../cache/bounded-lru.js';
import { takeToken, type BucketState } from './token-bucket.js';

export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly retryAfterSeconds: number;
}

/** Limits how often one workload identity makes the broker mint. Cached answers never reach it. */
export interface MintRateLimiter {
  take(identityKey: string): Promise<RateLimitDecision>;
}

export interface RateLimitSettings {
  readonly ratePerMinute: number;
  readonly burst: number;
}

/** A limiter that allows everything: `limits.minting` switched off. */
export const unlimited: MintRateLimiter = { take: async () => ({ allowed: true, retryAfterSeconds: 0 }) };

/** Token buckets in process memory, for a single instance; bounded so idle identities are forgotten. */
export class MemoryMintRateLimiter implements MintRateLimiter {
  private readonly buckets: BoundedLru<string, BucketState>;

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly now: () => number,
    maxBuckets = 100_000,
  ) {
    this.buckets = new BoundedLru(maxBuckets);
  }

  async take(identityKey: string): Promise<RateLimitDecision> {
    const decision = takeToken(this.buckets.get(identityKey), this.now(), this.settings.ratePerMinute / 60, this.settings.burst);
    this.buckets.set(identityKey, decision.state);
    return { allowed: decision.allowed, retryAfterSeconds: Math.ceil(decision.retryAfterMs / 1000) };
  }
}
