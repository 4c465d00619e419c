import type { TykApiOptions } from './tyk-api-options.js';
import { tykJwtValidation, type TokenProfile } from './tyk-jwt-validation.js';
import type { TykSigningMethod } from './tyk-signing-method.js';

/** A classic Tyk API definition (apidef/schema.json), as far as the broker fills it. */
export interface TykClassicApiDefinition {
  readonly name: string;
  readonly api_id: string;
  readonly org_id: string;
  readonly active: true;
  readonly use_keyless: false;
  readonly enable_jwt: true;
  readonly auth_configs: { readonly jwt: { readonly name: string; readonly auth_header_name: 'Authorization' } };
  readonly strip_auth_data: true;
  readonly jwt_signing_method: TykSigningMethod;
  readonly jwt_source: string;
  readonly jwt_identity_base_field: string;
  readonly jwt_policy_field_name: string;
  readonly jwt_scope_claim_name: string;
  readonly jwt_scope_to_policy_mapping: Readonly<Record<string, string>>;
  readonly idp_client_id_mapping_disabled: true;
  readonly jwt_issued_at_validation_skew: number;
  readonly jwt_not_before_validation_skew: number;
  readonly jwt_expires_at_validation_skew: number;
  readonly proxy: { readonly listen_path: string; readonly target_url: string; readonly strip_listen_path: true };
  readonly version_data: {
    readonly not_versioned: true;
    readonly default_version: 'Default';
    readonly versions: {
      readonly Default: { readonly name: 'Default'; readonly use_extended_paths: true; readonly extended_paths: Readonly<Record<string, never>> };
    };
  };
}

/**
 * Builds a classic Tyk API definition that accepts the tokens this broker configuration mints. Classic
 * APIs never check `iss` or `aud` and have no per-API JWKS cache timeout; the OAS definition does both,
 * so prefer it on gateways that support it. Pure.
 */
export function buildTykClassicApiDefinition(config: TokenProfile, options: Omit<TykApiOptions, 'jwksCacheSeconds'>): TykClassicApiDefinition {
  const jwt = tykJwtValidation(config);
  return {
    name: options.name,
    api_id: options.apiId,
    org_id: options.orgId,
    active: true,
    use_keyless: false,
    enable_jwt: true,
    // The name lets Tyk's classic-to-OAS migration keep the JWT scheme instead of dropping it.
    auth_configs: { jwt: { name: 'jwtAuth', auth_header_name: 'Authorization' } },
    // The broker's token is for Tyk (its `aud`), not for the upstream: do not forward it.
    strip_auth_data: true,
    jwt_signing_method: jwt.signingMethod,
    // Base64 of the JWKS URL, never the plain URL: since Tyk v5.9 a plain URL fails every request after
    // the first with "illegal base64 data" (TykTechnologies/tyk#7461).
    jwt_source: Buffer.from(jwt.jwksUrl, 'utf8').toString('base64'),
    jwt_identity_base_field: jwt.identityBaseField,
    // Tyk reads no policy claim unless this is set explicitly.
    jwt_policy_field_name: jwt.policyFieldName,
    jwt_scope_claim_name: jwt.scopeClaimName,
    jwt_scope_to_policy_mapping: Object.fromEntries(jwt.scopeToPolicy.map(({ scope, policyId }) => [scope, policyId])),
    // The broker never mints client_id/cid/clientId; this also saves Tyk an OAuth-client lookup.
    idp_client_id_mapping_disabled: true,
    jwt_issued_at_validation_skew: jwt.skewSeconds,
    jwt_not_before_validation_skew: jwt.skewSeconds,
    jwt_expires_at_validation_skew: jwt.skewSeconds,
    proxy: { listen_path: options.listenPath, target_url: options.upstreamUrl, strip_listen_path: true },
    version_data: {
      not_versioned: true,
      default_version: 'Default',
      // Without use_extended_paths the gateway logs "Legacy path detected! Upgrade to extended." for every load
      // (gateway/api_definition.go, MakeSpec). The extended paths stay empty on purpose: their white_list would
      // restrict every caller of the API alike, while the routes a workload may call are per policy, in the
      // policies' allowed_urls (see tyk-policies.ts), which Tyk checks per session.
      versions: { Default: { name: 'Default', use_extended_paths: true, extended_paths: {} } },
    },
  };
}
