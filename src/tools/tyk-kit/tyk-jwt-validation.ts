import type { BrokerConfig } from '../../server/config/schema.js';
import { grantablePolicies } from './grantable-policies.js';
import { tykSigningMethod, type TykSigningMethod } from './tyk-signing-method.js';

/** The parts of the broker configuration that decide how Tyk must validate the tokens the broker mints. */
export type TokenProfile = Pick<BrokerConfig, 'server' | 'signing' | 'tokens' | 'rules'>;

/**
 * Seconds of clock skew Tyk tolerates on `exp`, `iat` and `nbf`. The broker sets `iat` and `nbf` to the
 * moment it signs, so a gateway whose clock is a little behind would otherwise refuse fresh tokens
 * ("token used before issued"). Small, because it also lets an expired token live that much longer.
 */
export const TYK_CLOCK_SKEW_SECONDS = 5;

/**
 * What a Tyk API must check to accept exactly the broker's tokens, independent of the definition format.
 * The OAS and classic generators only spell these settings in their own field names.
 */
export interface TykJwtValidation {
  /** Where Tyk fetches the broker's public keys: {publicUrl}/.well-known/jwks.json, as the broker serves it. */
  readonly jwksUrl: string;
  readonly signingMethod: TykSigningMethod;
  /** The claim Tyk keys its session (rate limit, quota) on: `sub`, rendered from tokens.subject. */
  readonly identityBaseField: 'sub';
  /** The claim holding the first granted policy (tokens.policyClaim). */
  readonly policyFieldName: string;
  /** The claim holding every granted policy, space-separated (tokens.scopeClaim). */
  readonly scopeClaimName: string;
  /** Scope -> policy, one per grantable policy: the broker puts policy IDs in the scope claim verbatim. */
  readonly scopeToPolicy: readonly { readonly scope: string; readonly policyId: string }[];
  /** The exact `iss` of minted tokens: server.publicUrl as configured, trailing slash included. */
  readonly issuer: string;
  /** Every `aud` the broker can mint: tokens.allowedAudiences, or only tokens.audience. */
  readonly audiences: readonly string[];
  readonly skewSeconds: number;
}

/** The JWKS URL the broker serves (see http/well-known-routes.ts): the base without a trailing slash. */
export function brokerJwksUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/$/, '')}/.well-known/jwks.json`;
}

/** Derives the settings a Tyk API needs to validate the broker's tokens from its configuration. Pure. */
export function tykJwtValidation(config: TokenProfile): TykJwtValidation {
  const { grantable } = grantablePolicies(config.rules);
  return {
    jwksUrl: brokerJwksUrl(config.server.publicUrl),
    signingMethod: tykSigningMethod(config.signing.algorithm),
    identityBaseField: 'sub',
    policyFieldName: config.tokens.policyClaim,
    scopeClaimName: config.tokens.scopeClaim,
    scopeToPolicy: grantable.map((policyId) => ({ scope: policyId, policyId })),
    issuer: config.server.publicUrl,
    audiences: config.tokens.allowedAudiences ?? [config.tokens.audience],
    skewSeconds: TYK_CLOCK_SKEW_SECONDS,
  };
}
