import type { TykApiOptions } from './tyk-api-options.js';
import { tykJwtValidation, type TokenProfile } from './tyk-jwt-validation.js';
import type { TykSigningMethod } from './tyk-signing-method.js';

/** The name of the security scheme, shared by the OpenAPI components and the Tyk extension. */
export const TYK_SECURITY_SCHEME = 'jwtAuth';

/** The Tyk JWT security scheme (x-tyk-api-gateway definition `X-Tyk-JWT`). */
export interface TykOasJwt {
  readonly enabled: true;
  readonly header: { readonly enabled: true; readonly name: 'Authorization' };
  readonly source: string;
  readonly jwksURIs: readonly { readonly url: string; readonly cacheTimeout: string }[];
  readonly signingMethod: TykSigningMethod;
  readonly identityBaseField: string;
  readonly policyFieldName: string;
  readonly scopes: {
    readonly claimName: string;
    readonly scopeToPolicyMapping: readonly { readonly scope: string; readonly policyId: string }[];
  };
  readonly allowedIssuers: readonly string[];
  readonly allowedAudiences: readonly string[];
  readonly idpClientIdMappingDisabled: true;
  readonly issuedAtValidationSkew: number;
  readonly notBeforeValidationSkew: number;
  readonly expiresAtValidationSkew: number;
}

/** The `x-tyk-api-gateway` extension of a Tyk OAS API definition, as far as the broker fills it. */
export interface XTykApiGateway {
  readonly info: { readonly id: string; readonly orgId: string; readonly name: string; readonly state: { readonly active: true } };
  readonly upstream: { readonly url: string };
  readonly server: {
    readonly listenPath: { readonly value: string; readonly strip: true };
    readonly authentication: {
      readonly enabled: true;
      readonly stripAuthorizationData: true;
      readonly securitySchemes: { readonly [TYK_SECURITY_SCHEME]: TykOasJwt };
    };
  };
}

/** A Tyk OAS API definition: an OpenAPI 3.0 document plus Tyk's extension. */
export interface TykOasApiDefinition {
  readonly openapi: '3.0.3';
  readonly info: { readonly title: string; readonly version: string };
  readonly paths: Readonly<Record<string, never>>;
  readonly components: {
    readonly securitySchemes: {
      readonly [TYK_SECURITY_SCHEME]: { readonly type: 'http'; readonly scheme: 'bearer'; readonly bearerFormat: 'JWT' };
    };
  };
  readonly security: readonly [{ readonly [TYK_SECURITY_SCHEME]: readonly [] }];
  readonly 'x-tyk-api-gateway': XTykApiGateway;
}

/**
 * Builds a Tyk OAS API definition that accepts exactly the tokens this broker configuration mints:
 * signature by the broker's JWKS, issuer, audiences, policy claim and scope-to-policy mapping. Pure.
 */
export function buildTykOasApiDefinition(config: TokenProfile, options: TykApiOptions): TykOasApiDefinition {
  const jwt = tykJwtValidation(config);
  return {
    openapi: '3.0.3',
    info: { title: options.name, version: '1.0.0' },
    // No operations: the API proxies everything under the listen path, and Tyk requires `paths` to exist.
    paths: {},
    components: {
      securitySchemes: { [TYK_SECURITY_SCHEME]: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
    security: [{ [TYK_SECURITY_SCHEME]: [] }],
    'x-tyk-api-gateway': {
      info: { id: options.apiId, orgId: options.orgId, name: options.name, state: { active: true } },
      upstream: { url: options.upstreamUrl },
      server: {
        listenPath: { value: options.listenPath, strip: true },
        authentication: {
          enabled: true,
          // The broker's token is for Tyk (its `aud`), not for the upstream: do not forward it.
          stripAuthorizationData: true,
          securitySchemes: {
            [TYK_SECURITY_SCHEME]: {
              enabled: true,
              // Without this block Tyk OAS does not read the Authorization header at all.
              header: { enabled: true, name: 'Authorization' },
              // Gateways before v5.9 ignore jwksURIs and read `source`; later ones prefer jwksURIs for OAS
              // APIs. Base64, never a plain URL, which breaks after the first request (TykTechnologies/tyk#7461).
              source: Buffer.from(jwt.jwksUrl, 'utf8').toString('base64'),
              jwksURIs: [{ url: jwt.jwksUrl, cacheTimeout: `${options.jwksCacheSeconds}s` }],
              signingMethod: jwt.signingMethod,
              identityBaseField: jwt.identityBaseField,
              // Tyk reads no policy claim unless this is set explicitly.
              policyFieldName: jwt.policyFieldName,
              scopes: { claimName: jwt.scopeClaimName, scopeToPolicyMapping: jwt.scopeToPolicy },
              allowedIssuers: [jwt.issuer],
              allowedAudiences: jwt.audiences,
              // The broker never mints client_id/cid/clientId; this also saves Tyk an OAuth-client lookup.
              idpClientIdMappingDisabled: true,
              issuedAtValidationSkew: jwt.skewSeconds,
              notBeforeValidationSkew: jwt.skewSeconds,
              expiresAtValidationSkew: jwt.skewSeconds,
            },
          },
        },
      },
    },
  };
}
