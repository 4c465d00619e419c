import { hash } from 'node:crypto';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { MintInput } from '../mint/access-token-claims.js';

/**
 * The cache key of a minted credential: a hash of its whole mint input (every claim but the times and the id,
 * the policy list, the lifetime), of the verified workload instance it was minted for (issuer, subject, pod UID:
 * two callers never share one credential even where their claims coincide), of the rules version (a rule change
 * never serves a stale grant) and of the minter's generation (the signing kid, or the Tyk org). The mint input is
 * hashed as a whole, so a claim added to it enters the key without anyone keeping a list in step. Pure.
 */
export function tokenCacheKey(
  input: MintInput,
  identity: Pick<WorkloadIdentity, 'issuer' | 'subject' | 'podUid'>,
  context: { readonly rulesVersion: string; readonly generation: string },
): string {
  const material = JSON.stringify([
    input,
    [identity.issuer, identity.subject, identity.podUid ?? null],
    context.rulesVersion,
    context.generation,
  ]);
  return hash('sha256', material, 'base64url');
}
