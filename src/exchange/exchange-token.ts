import { randomUUID } from 'node:crypto';
import { BrokerError, invalidRequest, toBrokerError } from '../errors.js';
import { TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../protocol.js';
import { MAX_SUBJECT_TOKEN_BYTES, tokenSha256, type VerifiedSubjectToken } from '../issuers/verify-subject-token.js';
import type { ResolutionProgress, ResolveWorkload } from './resolve-workload.js';
import { rateLimitKey } from '../limits/rate-limit-key.js';
import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import type { PolicyDecision } from '../rules/evaluate-rules.js';
import { decideGrant } from '../rules/decide-grant.js';
import { mintInputOf, type MintInput } from '../mint/access-token-claims.js';
import { tokenCacheKey } from '../cache/cache-key.js';
import type { BrokerConfig } from '../config/schema.js';
import type { AccessTokenMinter } from '../mint/access-token-minter.js';
import type { TokenCache, CachedToken } from '../cache/token-cache.js';
import type { MintCoordinator } from '../cache/mint-coordinator.js';
import type { MintRateLimiter } from '../limits/mint-rate-limiter.js';
import type { ExchangeRequest, ExchangeResponse } from './exchange-request.js';
import type { ExchangeObserver, ExchangeOutcome } from '../observability/exchange-outcome.js';

export interface ExchangeDependencies {
  readonly config: Pick<BrokerConfig, 'tokens' | 'server' | 'cache'>;
  /** From a subject token to the identity the rules judge; the same resolver serves POST /v1/explain. */
  readonly resolveWorkload: ResolveWorkload;
  /** Produces the credential: a signed JWT, or a Tyk key. */
  readonly minter: AccessTokenMinter;
  readonly cache: TokenCache;
  /** Makes concurrent requests for the same token mint once (in this process, and across replicas with Redis). */
  readonly coordinator: MintCoordinator;
  readonly rateLimiter: MintRateLimiter;
  readonly now: () => number;
  readonly observe: ExchangeObserver;
  readonly newJti?: () => string;
}

export type ExchangeToken = (request: ExchangeRequest, requestId: string) => Promise<ExchangeResponse>;

/** The refusals whose log line explains each rule's verdict. */
const REFUSED_BY_RULES: ReadonlySet<string> = new Set(['no_matching_rule', 'scope_not_granted']);

function rateLimited(retryAfterSeconds: number): BrokerError {
  return new BrokerError('rate_limited', {
    oauthError: 'temporarily_unavailable',
    status: 429,
    description: `This workload asked for new tokens too often; retry after ${retryAfterSeconds}s. Re-presenting the same subject token is answered from the cache and does not count.`,
    facts: { retryAfterSeconds },
  });
}

/**
 * The use case, read top to bottom: verify the subject token, establish the workload identity, apply the
 * rules, narrow to the request, then serve from the cache or mint. One outcome is emitted per exchange.
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
    const minted: CachedToken = { token, expiresAt: issuedAt + input.ttlSeconds, jti, policies: input.policies };
    await deps.cache.set(cacheKey, minted, input.ttlSeconds - refreshBeforeSeconds);
    return minted;
  }

  return async function exchangeToken(request, requestId) {
    const started = performance.now();
    let outcome: Partial<ExchangeOutcome> & Pick<ExchangeOutcome, 'outcome' | 'reason'> = { outcome: 'error', reason: 'internal_error' };
    const progress: ResolutionProgress = {};
    let verified: VerifiedSubjectToken | undefined;
    let identity: WorkloadIdentity | undefined;
    let decision: PolicyDecision | undefined;
    let cacheResult: ExchangeOutcome['cacheResult'];
    let accessToken: string | undefined;
    try {
      if (request.requestedTokenType !== undefined && request.requestedTokenType !== TOKEN_TYPE_JWT && request.requestedTokenType !== TOKEN_TYPE_ACCESS_TOKEN) {
        throw invalidRequest('unsupported_token_type', `This broker issues ${deps.minter.issuedTokenType} tokens; requested_token_type "${request.requestedTokenType.slice(0, 120)}" is not supported.`);
      }
      const resolved = await resolveWorkload(request.subjectToken, progress);
      ({ verified, identity } = resolved);
      const { rules } = resolved;
      const decided = decideGrant(rules, identity, request, tokens);
      decision = decided.evaluation;
      if (!decided.granted) throw decided.refusal;
      // What the credential will say, derived once: the minter reads only this, and the cache key hashes all of it.
      const input = mintInputOf(decided.grant, tokens, deps.config.server.publicUrl);
      const cacheKey = tokenCacheKey(input, identity, { rulesVersion: rules.version, generation: deps.minter.generation() ?? 'none' });

      const mintingIdentity = identity;
      const lookup = await deps.cache.get(cacheKey);
      let result: CachedToken;
      let mintedHere = false;
      if (lookup.status === 'hit' && lookup.value.expiresAt - nowSeconds() > refreshBeforeSeconds) {
        cacheResult = 'hit';
        result = lookup.value;
      } else {
        cacheResult = lookup.status === 'hit' ? 'stale' : lookup.status;
        const obtained = await deps.coordinator.obtain(
          cacheKey,
          () => mint(mintingIdentity, input, cacheKey),
          (peer) => peer.expiresAt - nowSeconds() > refreshBeforeSeconds,
        );
        result = obtained.token;
        mintedHere = obtained.mintedHere;
      }
      const expiresIn = Math.max(0, result.expiresAt - nowSeconds());
      outcome = {
        outcome: mintedHere ? 'issued' : 'cached',
        reason: 'ok',
        policies: result.policies,
        jti: result.jti,
        expiresAt: result.expiresAt,
        ttlSeconds: expiresIn,
      };
      accessToken = result.token;
      return {
        accessToken: result.token,
        issuedTokenType: deps.minter.issuedTokenType,
        expiresIn,
        scope: result.policies.join(' '),
        jti: result.jti,
        expiresAt: result.expiresAt,
        cached: !mintedHere,
      };
    } catch (error) {
      const brokerError = toBrokerError(error);
      outcome = {
        outcome: brokerError.status >= 500 ? 'error' : 'rejected',
        reason: brokerError.code,
        facts: brokerError.facts,
        ...(brokerError.detail !== undefined && { detail: brokerError.detail }),
      };
      throw brokerError;
    } finally {
      verified ??= progress.verified;
      identity ??= progress.identity;
      // One fixed shape, every field assigned (undefined when not established): object spreads here cost ~20 us
      // per exchange, more than the rest of a cached exchange's bookkeeping (bench/README.md).
      const argo = identity === undefined ? undefined : argoContextOf(identity);
      const event: ExchangeOutcome = {
        requestId,
        outcome: outcome.outcome,
        reason: outcome.reason,
        durationMs: performance.now() - started,
        subjectTokenSha256: verified?.sha256 ?? (Buffer.byteLength(request.subjectToken) <= MAX_SUBJECT_TOKEN_BYTES ? tokenSha256(request.subjectToken) : undefined),
        // A refusal of an authentic token (expired, wrong audience) names the issuer whose key verified it.
        issuerName: verified?.issuer.config.name ?? (typeof outcome.facts?.issuer === 'string' ? outcome.facts.issuer : undefined),
        subjectTiming: verified?.timing,
        subject: identity?.subject,
        namespace: identity?.namespace,
        serviceAccount: identity?.serviceAccount,
        podName: identity?.podName,
        workflow: argo?.workflow,
        node: argo?.node,
        policies: outcome.policies,
        matchedRules: decision?.matchedRules,
        // Verdicts (one per rule) are built only to explain a refusal by the rules; most exchanges never build them.
        verdicts: decision !== undefined && REFUSED_BY_RULES.has(outcome.reason) ? decision.verdicts : undefined,
        jti: outcome.jti,
        expiresAt: outcome.expiresAt,
        ttlSeconds: outcome.ttlSeconds,
        // The access token's digest is for the audit record of an issued token, not for the cached answers.
        accessTokenSha256: accessToken !== undefined && outcome.outcome === 'issued' ? tokenSha256(accessToken) : undefined,
        cacheResult,
        facts: outcome.facts,
        detail: outcome.detail,
      };
      try {
        deps.observe(event);
      } catch {
        // Side channels never change a response.
      }
    }
  };
}
