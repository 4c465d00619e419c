import { decodeJwt } from 'jose';
import { BrokerError, invalidRequest } from '../../server/errors.js';
import { LEGACY_SERVICE_ACCOUNT_ISSUER } from '../../server/protocol.js';
import { kubernetesOf } from '../../server/config/validate-config.js';
import { checkTemporalClaims } from '../../server/issuers/temporal-claims.js';
import { identityFromClaims, type WorkloadIdentity } from '../../server/identity/workload-identity.js';
import type { BrokerConfig } from '../../server/config/schema.js';

/** The banner of every explanation of a token read without checking it. */
export const UNVERIFIED_NOTE =
  'unverified: decoded offline. The signature, issuer keys, pod binding and Kubernetes labels were NOT checked; POST /token checks them all.';

export type UnverifiedResolution =
  | { readonly kind: 'refused'; readonly error: BrokerError; readonly notes: readonly string[] }
  | { readonly kind: 'identity'; readonly identity: WorkloadIdentity; readonly notes: readonly string[] };

/**
 * Reads a subject token's payload WITHOUT verifying it, for the offline `explain --token`: finds the issuer by
 * exact `iss` as the exchange does, judges its time (exp, nbf, iat, the issuer's skew) with the exchange's own
 * checks, and reads the identity from the claims. What it cannot check it says in notes (the audience as a fact).
 * Never use this to authorize anything. Pure apart from `nowSeconds`, which the caller passes.
 */
export function identityFromUnverifiedToken(token: string, config: BrokerConfig, nowSeconds: number): UnverifiedResolution {
  const notes: string[] = [UNVERIFIED_NOTE];
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(token.trim());
  } catch {
    return { kind: 'refused', error: invalidRequest('malformed_token', 'The token is not a JWT with a JSON payload.'), notes };
  }
  const iss = claims.iss;
  if (iss === LEGACY_SERVICE_ACCOUNT_ISSUER || (iss === undefined && 'kubernetes.io/serviceaccount/namespace' in claims)) {
    return {
      kind: 'refused',
      error: invalidRequest('legacy_token', 'The token is a legacy Secret-based service-account token (no expiry, no audience); the broker refuses it.'),
      notes,
    };
  }
  if (typeof iss !== 'string') {
    return { kind: 'refused', error: invalidRequest('missing_claim', 'The token has no "iss" claim.', { facts: { claim: 'iss' } }), notes };
  }
  const issuer = config.issuers.find((candidate) => candidate.issuer === iss);
  if (issuer === undefined) {
    return {
      kind: 'refused',
      error: invalidRequest('unknown_issuer', `The token's issuer "${iss.slice(0, 200)}" is not configured (issuers must match exactly, trailing slash included).`),
      notes,
    };
  }

  // The exchange's own time checks (exp required, nbf, iat, the issuer's skew): an expired token is refused here
  // exactly as POST /token refuses it, so a CI gate built on explain cannot pass a token the exchange would not.
  try {
    checkTemporalClaims(claims, nowSeconds, issuer.clockSkewSeconds);
  } catch (error) {
    if (error instanceof BrokerError) return { kind: 'refused', error, notes };
    throw error;
  }
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  if (!audiences.some((a) => issuer.audiences.includes(a))) {
    notes.push(`the token's audience [${audiences.join(', ')}] is none of issuer "${issuer.name}"'s [${issuer.audiences.join(', ')}]: POST /token would refuse it (audience_mismatch)`);
  }
  if (kubernetesOf(config, issuer)?.enabled === true) {
    notes.push('no Kubernetes API was asked: rules that read labels, pod annotations or the workflow cannot match here (use --identity with a fixture to supply them)');
  }

  try {
    return { kind: 'identity', identity: identityFromClaims(issuer, claims), notes };
  } catch (error) {
    if (error instanceof BrokerError) return { kind: 'refused', error, notes };
    throw error;
  }
}
