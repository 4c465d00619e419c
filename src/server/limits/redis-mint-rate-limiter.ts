import { REDIS_UNAVAILABLE, type RedisConnection } from '../cache/redis-connection.js';
import { redisScript, runRedisScript } from '../cache/redis-script.js';
import type { MintRateLimiter, RateLimitDecision, RateLimitSettings } from './mint-rate-limiter.js';

/**
 * The token bucket of token-bucket.ts as one Lua script, so the read-refill-take-write cycle is atomic across
 * replicas. KEYS[1] = bucket; ARGV = rate per second, burst, now in ms. Returns {allowed, retryAfterMs}.
 */
export const TOKEN_BUCKET_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
local elapsed = now - ts
-- A replica whose clock runs behind must not move the bucket back in time and earn the same refill twice.
if elapsed < 0 then elapsed = 0; now = ts end
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
-- %.17g round-trips a double exactly; tostring keeps 14 digits, which drifts from the memory limiter.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, retry}
`;

const BUCKET_SCRIPT = redisScript(TOKEN_BUCKET_SCRIPT);

/**
 * Per-identity mint limit shared by all replicas. When Redis is unavailable it allows the mint (and the
 * caller counts it): the limit protects against a runaway workload, it is not an authorization decision,
 * and failing closed would turn a Redis outage into a pipeline outage.
 */
export class RedisMintRateLimiter implements MintRateLimiter {
  constructor(
    private readonly connection: RedisConnection,
    private readonly settings: RateLimitSettings,
    private readonly now: () => number,
    private readonly onError: () => void = () => undefined,
  ) {}

  async take(identityKey: string): Promise<RateLimitDecision> {
    const result = await this.connection.attempt((client) =>
      runRedisScript(client, BUCKET_SCRIPT, `${this.connection.keyPrefix}rl:${identityKey}`, [
        String(this.settings.ratePerMinute / 60),
        String(this.settings.burst),
        String(this.now()),
      ]),
    );
    if (result === REDIS_UNAVAILABLE || !Array.isArray(result)) {
      this.onError();
      return { allowed: true, retryAfterSeconds: 0 };
    }
    const [allowed, retryAfterMs] = result as [number, number];
    return { allowed: allowed === 1, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) };
  }
}
