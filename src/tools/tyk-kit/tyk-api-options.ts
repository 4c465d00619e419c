/** Tyk's per-API JWKS cache lifetime when none is given; it is also Tyk's own default. */
export const DEFAULT_JWKS_CACHE_SECONDS = 240;

/**
 * Tyk's organisation for APIs and policies loaded from files. A policy only applies to an API of the same
 * `org_id`, so `tyk api` and `tyk policies` share this default and take the same --org-id.
 */
export const DEFAULT_TYK_ORG_ID = 'default';

/** The Tyk-side facts of one API that the broker configuration does not know. */
export interface TykApiOptions {
  readonly apiId: string;
  readonly name: string;
  readonly orgId: string;
  /** Path prefix Tyk listens on, such as /orders/; stripped before proxying. */
  readonly listenPath: string;
  readonly upstreamUrl: string;
  /** How long Tyk keeps the broker's JWKS (OAS only; classic APIs use the gateway-wide setting). */
  readonly jwksCacheSeconds: number;
}
