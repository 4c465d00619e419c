/**
 * Protocol constants: RFC 8693 (token exchange) and RFC 6749 (OAuth 2.0) identifiers in one place,
 * so that no URN or error code is spelled twice.
 */

export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/** Subject token types the broker accepts: a projected service-account token is a JWT, and OIDC tooling often labels it an ID token. */
export const ACCEPTED_SUBJECT_TOKEN_TYPES: readonly string[] = [TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN];

/** Requested token types the broker can issue. */
export const ISSUABLE_TOKEN_TYPES: readonly string[] = [TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS_TOKEN];

/** OAuth error codes (RFC 6749 section 5.2, RFC 8693 section 2.2.2, RFC 6750 for temporarily_unavailable). */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'temporarily_unavailable'
  | 'server_error';

/** Asymmetric JWS algorithms accepted on subject tokens. HMAC and `none` are never accepted. */
export const ACCEPTED_SUBJECT_ALGORITHMS: readonly string[] = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
];

/** Algorithms the broker signs with. Tyk has no EdDSA. */
export const SIGNING_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Claims Tyk treats as an OAuth client id (it looks up a client for each request): never emitted. */
export const FORBIDDEN_MINTED_CLAIMS: readonly string[] = ['client_id', 'cid', 'clientId'];

/** `iss` of legacy Secret-based service-account tokens (no `exp`, no `aud`). */
export const LEGACY_SERVICE_ACCOUNT_ISSUER = 'kubernetes/serviceaccount';

/** The private claim of Kubernetes bound service-account tokens. */
export const KUBERNETES_CLAIM = 'kubernetes.io';
