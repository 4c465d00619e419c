import type { Attributes } from '@opentelemetry/api';
import type { Tracing } from './tracing.js';
import type { TokenCache } from '../cache/token-cache.js';
import type { MintCoordinator } from '../cache/mint-coordinator.js';
import type { MintRateLimiter } from '../limits/mint-rate-limiter.js';
import type { AccessTokenMinter } from '../mint/access-token-minter.js';
import type { KubernetesMetadataSource } from '../identity/kubernetes-metadata.js';
import type { IssuerFetch } from '../issuers/issuer-fetch.js';
import type { verifySubjectToken } from '../issuers/verify-subject-token.js';
import type { AuditRecord } from './audit-record.js';

/*
 * The exchange's parts wrapped so that each logical operation is one span. The broker wraps them only when tracing
 * is on (src/server/broker.ts), so the untraced parts run as they are. Attributes name the operation and the
 * configuration it used (issuer, namespace, resource kind), never a token, a key, a digest or a claim value beyond
 * what the exchange log line carries.
 */

const REDIS: Attributes = { 'db.system.name': 'redis' };

/** The Redis token cache: one span per get and per set. */
export function tracedTokenCache(cache: TokenCache, tracing: Tracing): TokenCache {
  return {
    get: (key) =>
      tracing.inSpan('redis token cache get', { ...REDIS, 'db.operation.name': 'GET' }, async (span) => {
        const lookup = await cache.get(key);
        span.setAttribute('token_broker.cache', lookup.status);
        return lookup;
      }),
    set: (key, value, ttlSeconds) => tracing.inSpan('redis token cache set', { ...REDIS, 'db.operation.name': 'SET' }, () => cache.set(key, value, ttlSeconds)),
    // The kill switch's scan, never on an exchange's path: untraced.
    takeWhere: (matches) => cache.takeWhere(matches),
    close: () => cache.close(),
  };
}

/** The Redis mint lock: the span covers waiting for a peer's token or minting under the lock. */
export function tracedMintCoordinator(coordinator: MintCoordinator, tracing: Tracing): MintCoordinator {
  return {
    obtain: (cacheKey, mint, usable) =>
      tracing.inSpan('redis mint lock', REDIS, async (span) => {
        const obtained = await coordinator.obtain(cacheKey, mint, usable);
        span.setAttribute('token_broker.minted_here', obtained.mintedHere);
        return obtained;
      }),
  };
}

/** The Redis mint rate limit: one span per decision. */
export function tracedRateLimiter(limiter: MintRateLimiter, tracing: Tracing): MintRateLimiter {
  return {
    take: (identityKey) =>
      tracing.inSpan('redis mint rate limit', REDIS, async (span) => {
        const decision = await limiter.take(identityKey);
        span.setAttribute('token_broker.allowed', decision.allowed);
        return decision;
      }),
  };
}

/** The Redis audit stream: one span per XADD (a child of the exchange span, which may end first). */
export function tracedAuditStream(stream: { append(record: AuditRecord): Promise<boolean> }, tracing: Tracing): { append(record: AuditRecord): Promise<boolean> } {
  return {
    append: (record) =>
      tracing.inSpan('redis audit append', { ...REDIS, 'db.operation.name': 'XADD' }, async (span) => {
        const ok = await stream.append(record);
        span.setAttribute('token_broker.streamed', ok);
        return ok;
      }),
  };
}

/** Signing (or creating the Tyk key): one span per credential. */
export function tracedMinter(minter: AccessTokenMinter, tracing: Tracing): AccessTokenMinter {
  return {
    issuedTokenType: minter.issuedTokenType,
    generation: () => minter.generation(),
    mint: (input, mintContext) => tracing.inSpan('sign access token', {}, () => minter.mint(input, mintContext)),
  };
}

/** Kubernetes lookups: one span per question to the API (answered from the broker's lookup cache or not). */
export function tracedKubernetesSource(source: KubernetesMetadataSource, tracing: Tracing): KubernetesMetadataSource {
  return {
    getNamespace: (name) => tracing.inSpan('kubernetes get namespace', { 'k8s.namespace.name': name }, () => source.getNamespace(name)),
    getServiceAccount: (namespace, name) =>
      tracing.inSpan('kubernetes get serviceaccount', { 'k8s.namespace.name': namespace }, () => source.getServiceAccount(namespace, name)),
    getPod: (namespace, name, uid) => tracing.inSpan('kubernetes get pod', { 'k8s.namespace.name': namespace }, () => source.getPod(namespace, name, uid)),
    reviewToken: (token, audiences) => tracing.inSpan('kubernetes create tokenreview', {}, () => source.reviewToken(token, audiences)),
    close: () => source.close(),
  };
}

/** An issuer's discovery and JWKS requests: one span each, named by what is fetched (the URL is configuration, not recorded). */
export function tracedIssuerFetch(issuerName: string, fetch: IssuerFetch, tracing: Tracing): IssuerFetch {
  return (url, init) =>
    tracing.inSpan(url.endsWith('/.well-known/openid-configuration') ? 'issuer discovery' : 'jwks fetch', { 'token_broker.issuer': issuerName }, async (span) => {
      const response = await fetch(url, init);
      span.setAttribute('http.response.status_code', response.status);
      return response;
    });
}

/** Subject-token verification: signature (or the verified-token cache), issuer, audience and time checks. */
export function tracedVerify(verify: typeof verifySubjectToken, tracing: Tracing): typeof verifySubjectToken {
  return (subjectToken, issuers, now, verifiedTokens) =>
    tracing.inSpan('verify subject token', {}, async (span) => {
      const verified = await verify(subjectToken, issuers, now, verifiedTokens);
      span.setAttribute('token_broker.issuer', verified.issuer.config.name);
      return verified;
    });
}
