import { hash } from 'node:crypto';
import type { Grant } from '../mint/access-token-claims.js';

/**
 * The cache key of a minted token: a hash of everything that determines it, so that a rule change
 * (rules version) or a key rotation (signing kid) never serves a stale grant. Pure.
 */
export function tokenCacheKey(grant: Grant, context: { readonly rulesVersion: string; readonly signingKid: string }): string {
  const { identity } = grant;
  const material = JSON.stringify([
    identity.issuer,
    identity.subject,
    identity.podUid ?? null,
    identity.podName ?? null,
    grant.audience,
    grant.policies,
    grant.ttlSeconds,
    context.rulesVersion,
    context.signingKid,
  ]);
  return hash('sha256', material, 'base64url');
}
