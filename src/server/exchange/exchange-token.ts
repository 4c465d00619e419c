import { randomUUID } from 'node:crypto';
import { BrokerError, invalidRequest } from '../errors.js';
import { TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../protocol.js';
import type { ResolveWorkload } from './resolve-workload.js';
import { rateLimitKey } from '../limits/rate-limit-key.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import { decideGrant } from '../rules/decide-grant.js';
import type { ResourceTargets } from '../rules/resource-targets.js';
import { mintInputOf, type MintInput } from '../mint/access-token-claims.js';
import { tokenCacheKey } from '../cache/cache-key.js';
import type { BrokerConfig } from '../config/schema.js';
import type { AccessTokenMinter } from '../mint/access-token-minter.js';
import type { TokenCache, CachedToken } from '../cache/token-cache.js';
import type { MintCoordinator } from '../cache/mint-coordinator.js';
import type { MintRateLimiter } from '../limits/mint-rate-limiter.js';
import type { ExchangeRequest, ExchangeResponse } from './exchange-request.js';
import type { ExchangeRecord } from '../observability/exchange-record.js';
import type { DenyList } from '../deny/deny-list.js';
import { denySubjectOf } from '../deny/deny-subject.js';
import { deniedError } from '../deny/denied-error.js';
import type { DenySubject } from '../deny/deny-match.js';
import type { Deny } from '../deny/deny.js';

export interface ExchangeDependencies {
  readonly config: Pick<BrokerConfig, 'tokens' | 'server' | 'cache'>;
  /** From a subject token to the identity the rules judge; the same resolver serves POST /v1/explain. */
  readonly resolveWorkload: ResolveWorkload;
  /** What an RFC 8707 `resource` may name (the `apis` and `policies` blocks, compiled once). */
  readonly resourceTargets: ResourceTargets;
  /** Produces the credential: a signed JWT, or a Tyk key. */
  readonly minter: AccessTokenMinter;
  readonly cache: TokenCache;
  /** Makes concurrent requests for the same token mint once (in this process, and across replicas with Redis). */
  readonly coordinator: MintCoordinator;
  readonly rateLimiter: MintRateLimiter;
  readonly now: () => number;
  readonly newJti?: () => string;
  /** Operators' denies (static and shared); absent or empty, the exchange pays one property read. */
  readonly denies?: DenyList;
  /** Record the holder's facets with each minted token (tyk-key mode), so a later deny can delete its key. */
  readonly recordHolder?: boolean;
  /** A cached token was not served because a deny revokes it (metrics). */
  readonly onRevokedTokenSkipped?: (deny: Deny) => void;
}

/**
 * One exchange. It notes on `record` what each step establishes and answers or throws the refusal; the caller
 * ends the record with that answer (src/server/http/token-route.ts), so a refusal before the exchange (an unreadable
 * body, a missing client certificate) is recorded the same way.
 */
export type ExchangeToken = (request: ExchangeRequest, record: ExchangeRecord) => Promise<ExchangeResponse>;

function rateLimited(retryAfterSeconds: number): BrokerError {
  return new BrokerError('rate_limited', {
    oauthError: 'temporarily_unavailable',
    status: 429,
    description: `This workload asked for new tokens too often; retry after ${retryAfterSeconds}s. Re-presenting the same subject token is answered from the cache and does not count.`,
    facts: { retryAfterSeconds },
  });
}

/**
 * The use case, read top to bottom: verify the subject token, establish the workload identity, decide the grant
 * (rules, scope, resource, audience), then serve from the cache or mint.
 */
export function createExchange(deps: ExchangeDependencies): ExchangeToken {
  const { tokens } = deps.config;
  const { refreshBeforeSeconds } = deps.config.cache;
  const newJti = deps.newJti ?? randomUUID;
  const nowSeconds = () => Math.floor(deps.now() / 1000);
  const { resolveWorkload } = deps;

  async function mint(identity: WorkloadIdentity, input: MintInput, cacheKey: string): Promise<CachedToken> {
    const limit = await deps.rateLimiter.take(rateLimitKey(identity));
    if (!limit.allowed) throw rateLimited(Math.max(1, limit.retryAfterSeconds));
    const issuedAt = nowSeconds();
    const jti = newJti();
    const token = await deps.minter.mint(input, { nowSeconds: issuedAt, jti });
    const minted: CachedToken =
      deps.recordHolder === true
        ? { token, expiresAt: issuedAt + input.ttlSeconds, jti, policies: input.policies, holder: denySubjectOf(identity) }
        : { token, expiresAt: issuedAt + input.ttlSeconds, jti, policies: input.policies };
    await deps.cache.set(cacheKey, minted, input.ttlSeconds - refreshBeforeSeconds);
    return minted;
  }

  /** Whether a cached token may be served: no deny in force revokes it (counted when one does). */
  function servable(token: CachedToken, subject: DenySubject): boolean {
    const deny = deps.denies?.snapshot.revoking(token.jti, subject, deps.now());
    if (deny !== undefined) deps.onRevokedTokenSkipped?.(deny);
    return deny === undefined;
  }

  return async function exchangeToken(request, record) {
    record.presented(request.subjectToken);
    if (request.requestedTokenType !== undefined && request.requestedTokenType !== TOKEN_TYPE_JWT && request.requestedTokenType !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw invalidRequest('unsupported_token_type', `This broker issues ${deps.minter.issuedTokenType} tokens; requested_token_type "${request.requestedTokenType.slice(0, 120)}" is not supported.`);
    }
    const { identity, rules } = await resolveWorkload(request.subjectToken, record);
    // Denies are judged on the established identity, before the rules and before the cache: a denied workload is
    // never served, not even a token cached before the deny.
    const denies = deps.denies?.snapshot;
    let denySubject: DenySubject | undefined;
    if (denies !== undefined && !denies.empty) {
      denySubject = denySubjectOf(identity);
      const deny = denies.refusing(denySubject, deps.now());
      if (deny !== undefined) throw deniedError(deny);
    }
    const decided = decideGrant(rules, identity, request, tokens, deps.resourceTargets);
    record.evaluated(decided.evaluation);
    if (!decided.granted) throw decided.refusal;
    // What the credential will say, derived once: the minter reads only this, and the cache key hashes all of it.
    const input = mintInputOf(decided.grant, tokens, deps.config.server.publicUrl);
    const cacheKey = tokenCacheKey(input, identity, { rulesVersion: rules.version, generation: deps.minter.generation() ?? 'none' });

    const lookup = await deps.cache.get(cacheKey);
    let result: CachedToken;
    let mintedHere = false;
    // A token revoked by jti is never handed out again (the workload gets a fresh one); checked only with denies in force.
    if (lookup.status === 'hit' && lookup.value.expiresAt - nowSeconds() > refreshBeforeSeconds && (denySubject === undefined || servable(lookup.value, denySubject))) {
      record.cacheAnswered('hit');
      result = lookup.value;
    } else {
      record.cacheAnswered(lookup.status === 'hit' ? 'stale' : lookup.status);
      const obtained = await deps.coordinator.obtain(
        cacheKey,
        () => mint(identity, input, cacheKey),
        (peer) => peer.expiresAt - nowSeconds() > refreshBeforeSeconds && (denySubject === undefined || servable(peer, denySubject)),
      );
      result = obtained.token;
      mintedHere = obtained.mintedHere;
    }
    return {
      accessToken: result.token,
      issuedTokenType: deps.minter.issuedTokenType,
      expiresIn: Math.max(0, result.expiresAt - nowSeconds()),
      scope: result.policies.join(' '),
      policies: result.policies,
      jti: result.jti,
      expiresAt: result.expiresAt,
      cached: !mintedHere,
    };
  };
}
