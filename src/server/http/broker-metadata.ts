import { GRANT_TYPE_TOKEN_EXCHANGE } from '../protocol.js';

/*
 * The broker's two discovery documents. Each field says something true about this broker; a field with a default
 * that would be false (grant types, client authentication) is spelled out.
 *
 * The broker is a token endpoint and a JWKS: no authorization endpoint, no ID tokens, no userinfo, no client
 * registration. So neither document names an authorization endpoint, `response_types_supported` is the empty list
 * (REQUIRED by RFC 8414 section 2 and by OpenID Connect Discovery 1.0 section 3, and no response type is
 * supported), and `id_token_signing_alg_values_supported` is absent: the broker signs access tokens, never ID
 * tokens, and every published JWK carries its `alg`.
 */

/** RFC 8414 metadata, served at /.well-known/oauth-authorization-server. */
export interface AuthorizationServerMetadata {
  readonly issuer: string;
  readonly token_endpoint: string;
  readonly jwks_uri: string;
  readonly grant_types_supported: readonly string[];
  readonly token_endpoint_auth_methods_supported: readonly string[];
  readonly response_types_supported: readonly string[];
}

/** The OpenID Connect Discovery document, for verifiers that only know OIDC discovery (they need issuer and jwks_uri). */
export interface OpenIdConfiguration extends AuthorizationServerMetadata {
  readonly subject_types_supported: readonly string[];
}

/**
 * The broker's RFC 8414 authorization server metadata for `publicUrl` (the `iss` of its tokens).
 *
 * `token_endpoint_auth_methods_supported` is `none`: callers authenticate with their subject token, not as OAuth
 * clients (no client_id, no secret); left out, RFC 8414 would default to client_secret_basic.
 */
export function authorizationServerMetadata(publicUrl: string): AuthorizationServerMetadata {
  const base = publicUrl.replace(/\/$/, '');
  return {
    issuer: publicUrl,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
    token_endpoint_auth_methods_supported: ['none'],
    response_types_supported: [],
  };
}

/**
 * The OpenID Connect Discovery document: the RFC 8414 fields plus `subject_types_supported: ["public"]`, which
 * OIDC Discovery requires and which is true: a minted token's `sub` depends on the workload, never on the audience.
 * It is not a complete OpenID Provider document (no authorization endpoint, no ID-token algorithms) because the
 * broker is not an OpenID Provider.
 */
export function openIdConfiguration(publicUrl: string): OpenIdConfiguration {
  return { ...authorizationServerMetadata(publicUrl), subject_types_supported: ['public'] };
}
