import { randomUUID } from 'node:crypto';
import { BrokerError, invalidRequest, invalidTarget, temporarilyUnavailable, toBrokerError } from '../errors.js';
import { TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../protocol.js';
import { MAX_SUBJECT_TOKEN_BYTES, verifySubjectToken, tokenSha256, type VerifiedSubjectToken } from '../issuers/verify-subject-token.js';
import { rateLimitKey } from '../limits/rate-limit-key.js';
import { identityFromClaims, type WorkloadIdentity } from '../identity/workload-identity.js';
import { evaluateRules, type PolicyDecision } from '../rules/evaluate-rules.js';
import { buildAccessTokenClaims, type Grant } from '../mint/access-token-claims.js';
import { signAccessToken } from '../mint/sign-access-token.js';
import { tokenCacheKey } from '../cache/cache-key.js';
import type { BrokerConfig } from '../config/schema.js';
import type { CompiledRules } from '../rules/compiled-rules.js';
import type { SigningKeySet } from '../mint/signing-key-set.js';
import type { TokenCache, CachedToken } from '../cache/token-cache.js';
import type { MintCoordinator } from '../cache/mint-coordinator.js';
import type { MintRateLimiter } from '../limits/mint-rate-limiter.js';
import type { TrustedIssuers } from '../issuers/trusted-issuers.js';
import type { ExchangeRequest, ExchangeResponse } from './exchange-request.js';
import type { ExchangeObserver, ExchangeOutcome } from '../observability/exchange-outcome.js';

export interface ExchangeDependencies {
  readonly config: Pick<BrokerConfig, 'tokens' | 'server' | 'cache'>;
  readonly issuers: TrustedIssuers;
  /** Read on every exchange, so a reload can swap the compiled rules atomically. */
  readonly rules: () => CompiledRules;
  readonly signingKeys: SigningKeySet;
  readonly cache: TokenCache;
  /** Makes concurrent requests for the same token mint once (in this process, and across replicas with Redis). */
  readonly coordinator: MintCoordinator;
  readonly rateLimiter: MintRateLimiter;
  readonly now: () => number;
  readonly observe: ExchangeObserver;
  readonly newJti?: () => string;
}

export type ExchangeToken = (request: ExchangeRequest, requestId: string) => Promise<ExchangeResponse>;

/** Narrows the granted policies to the requested scope, which must be a subset of them (RFC 8693 `scope`). */
function narrowPolicies(decision: PolicyDecision, scope: readonly string[] | undefined): readonly string[] {
  if (scope === undefined) return decision.policies;
  const granted = new Set(decision.policies);
  const refused = scope.filter((policy) => !granted.has(policy));
  if (refused.length > 0) {
    throw invalidTarget('scope_not_granted', `The requested scope includes policies this workload is not granted: ${refused.join(' ')}.`);
  }
  const requested = new Set(scope);
  return decision.policies.filter((policy) => requested.has(policy));
}

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
  const allowedAudiences = new Set(tokens.allowedAudiences ?? [tokens.audience]);
  const newJti = deps.newJti ?? randomUUID;
  const nowSeconds = () => Math.floor(deps.now() / 1000);

  async function mint(grant: Grant, cacheKey: string): Promise<CachedToken> {
    const limit = await deps.rateLimiter.take(rateLimitKey(grant.identity));
    if (!limit.allowed) throw rateLimited(Math.max(1, limit.retryAfterSeconds));
    const key = deps.signingKeys.active();
    if (key === undefined) throw temporarilyUnavailable('no_signing_key', 'The broker has no signing key right now; retry shortly.');
    const issuedAt = nowSeconds();
    const jti = newJti();
    const claims = buildAccessTokenClaims(grant, tokens, { issuer: deps.config.server.publicUrl, nowSeconds: issuedAt, jti });
    const token = await signAccessToken(claims, key);
    const minted: CachedToken = { token, expiresAt: issuedAt + grant.ttlSeconds, jti, policies: grant.policies };
    await deps.cache.set(cacheKey, minted, grant.ttlSeconds - refreshBeforeSeconds);
    return minted;
  }

  return async function exchangeToken(request, requestId) {
    const started = performance.now();
    let outcome: Partial<ExchangeOutcome> & Pick<ExchangeOutcome, 'outcome' | 'reason'> = { outcome: 'error', reason: 'internal_error' };
    let verified: VerifiedSubjectToken | undefined;
    let identity: WorkloadIdentity | undefined;
    let decision: PolicyDecision | undefined;
    let cacheResult: ExchangeOutcome['cacheResult'];
    try {
      if (request.requestedTokenType !== undefined && request.requestedTokenType !== TOKEN_TYPE_JWT && request.requestedTokenType !== TOKEN_TYPE_ACCESS_TOKEN) {
        throw invalidRequest('unsupported_token_type', `This broker issues ${TOKEN_TYPE_JWT} tokens; requested_token_type "${request.requestedTokenType.slice(0, 120)}" is not supported.`);
      }
      verified = await verifySubjectToken(request.subjectToken, deps.issuers, deps.now);
      identity = identityFromClaims(verified.issuer.config, verified.claims);
      decision = evaluateRules(deps.rules(), identity, tokens);
      if (decision.policies.length === 0) {
        throw invalidRequest('no_matching_rule', 'No policy is granted to this workload identity.', {
          detail: 'no rule matched; see verdicts',
        });
      }
      const audience = request.audience ?? tokens.audience;
      if (!allowedAudiences.has(audience)) {
        throw invalidTarget('audience_not_allowed', `The broker does not issue tokens for audience "${audience.slice(0, 120)}".`);
      }
      const grant: Grant = { identity, policies: narrowPolicies(decision, request.scope), audience, ttlSeconds: decision.ttlSeconds };
      const signingKid = deps.signingKeys.active()?.kid ?? 'none';
      const cacheKey = tokenCacheKey(grant, { rulesVersion: deps.rules().version, signingKid });

      const lookup = await deps.cache.get(cacheKey);
      let result: CachedToken;
      let mintedHere = false;
      if (lookup.status === 'hit' && lookup.value.expiresAt - nowSeconds() > refreshBeforeSeconds) {
        cacheResult = 'hit';
        result = lookup.value;
      } else {
        cacheResult = lookup.status === 'hit' ? 'stale' : lookup.status;
        const obtained = await deps.coordinator.obtain(cacheKey, () => mint(grant, cacheKey));
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
        accessTokenSha256: tokenSha256(result.token),
      };
      return {
        accessToken: result.token,
        issuedTokenType: TOKEN_TYPE_JWT,
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
      const event: ExchangeOutcome = {
        ...outcome,
        requestId,
        durationMs: performance.now() - started,
        subjectTokenSha256: verified?.sha256 ?? (Buffer.byteLength(request.subjectToken) <= MAX_SUBJECT_TOKEN_BYTES ? tokenSha256(request.subjectToken) : undefined),
        ...(cacheResult !== undefined && { cacheResult }),
        ...(verified !== undefined && { issuerName: verified.issuer.config.name, subjectTiming: verified.timing }),
        ...(identity !== undefined && {
          subject: identity.subject,
          namespace: identity.namespace,
          serviceAccount: identity.serviceAccount,
          podName: identity.podName,
        }),
        ...(decision !== undefined && { matchedRules: decision.matchedRules, verdicts: decision.verdicts }),
      };
      try {
        deps.observe(event);
      } catch {
        // Side channels never change a response.
      }
    }
  };
}
