/**
 * What the doctor needs to know of a Tyk API definition, read alike from classic definitions (GET /tyk/apis) and
 * Tyk OAS ones (GET /tyk/apis/oas). The gateway lists every API in classic form, Tyk OAS ones marked `is_oas`;
 * their OAS document, when it can be read, is the more faithful source (the `header` block exists only there).
 * Pure: no I/O.
 */

type JsonObject = Record<string, unknown>;

/** What a `jwt_source` / OAS `source` holds. */
export type JwtSource =
  | { readonly kind: 'none' }
  /** A plain http(s) URL: breaks after the first request since Tyk v5.9 (TykTechnologies/tyk#7461). */
  | { readonly kind: 'plain-url'; readonly url: string }
  | { readonly kind: 'base64-url'; readonly url: string }
  | { readonly kind: 'base64-pem' }
  | { readonly kind: 'base64-secret' }
  | { readonly kind: 'invalid' };

export interface TykApiView {
  readonly apiId: string;
  readonly name: string;
  readonly orgId: string;
  readonly format: 'oas' | 'classic';
  /** False for a Tyk OAS API whose OAS document could not be read: OAS-only settings are unknown. */
  readonly oasKnown: boolean;
  readonly jwtEnabled: boolean;
  readonly signingMethod: string;
  /** OAS `jwksURIs` / classic `jwt_jwks_uris`: preferred over the source by Tyk v5.9+. */
  readonly jwksUris: readonly { readonly url: string; readonly cacheTimeout: string | undefined }[];
  readonly source: JwtSource;
  /** Tyk OAS: whether the JWT scheme's `header` block is enabled; undefined for classic APIs or when unknown. */
  readonly headerEnabled: boolean | undefined;
  readonly policyFieldName: string;
  /** Policy IDs the scope-to-policy mapping can add. */
  readonly scopeMappedPolicies: readonly string[];
  /** Tyk OAS (v5.10+) claim checks; undefined when not set or unknown. */
  readonly allowedIssuers: readonly string[] | undefined;
  readonly allowedAudiences: readonly string[] | undefined;
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function objectAt(value: unknown, ...path: readonly string[]): JsonObject {
  let current = value;
  for (const key of path) current = isObject(current) ? current[key] : undefined;
  return isObject(current) ? current : {};
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function strings(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list = value.filter((v): v is string => typeof v === 'string');
  return list.length === 0 ? undefined : list;
}

const HTTP_URL = /^https?:\/\//i;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Classifies a `jwt_source`: a plain URL, base64 of a URL, of a PEM, of an HMAC secret, or not base64 at all. Pure. */
export function decodeJwtSource(source: string): JwtSource {
  const trimmed = source.trim();
  if (trimmed === '') return { kind: 'none' };
  if (HTTP_URL.test(trimmed)) return { kind: 'plain-url', url: trimmed };
  if (!BASE64.test(trimmed) || trimmed.length % 4 === 1) return { kind: 'invalid' };
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8').trim();
  if (HTTP_URL.test(decoded)) return { kind: 'base64-url', url: decoded };
  if (decoded.includes('-----BEGIN')) return { kind: 'base64-pem' };
  return { kind: 'base64-secret' };
}

function jwksUrisOf(list: unknown, timeoutField: string): TykApiView['jwksUris'] {
  if (!Array.isArray(list)) return [];
  return list.filter(isObject).flatMap((entry) => {
    const url = text(entry.url);
    const timeout = entry[timeoutField];
    return url === '' ? [] : [{ url, cacheTimeout: typeof timeout === 'string' && timeout !== '' ? timeout : undefined }];
  });
}

function classicView(def: JsonObject): TykApiView {
  const mapping = isObject(objectAt(def, 'scopes', 'jwt').scope_to_policy) ? objectAt(def, 'scopes', 'jwt', 'scope_to_policy') : objectAt(def, 'jwt_scope_to_policy_mapping');
  const isOas = def.is_oas === true;
  return {
    apiId: text(def.api_id),
    name: text(def.name),
    orgId: text(def.org_id),
    format: isOas ? 'oas' : 'classic',
    oasKnown: !isOas,
    jwtEnabled: def.enable_jwt === true,
    signingMethod: text(def.jwt_signing_method),
    jwksUris: jwksUrisOf(def.jwt_jwks_uris, 'cache_timeout'),
    source: decodeJwtSource(text(def.jwt_source)),
    headerEnabled: undefined,
    policyFieldName: text(def.jwt_policy_field_name),
    scopeMappedPolicies: Object.values(mapping).filter((v): v is string => typeof v === 'string'),
    allowedIssuers: undefined,
    allowedAudiences: undefined,
  };
}

/** The JWT scheme of a Tyk OAS definition: the first security scheme that carries JWT settings. */
function oasJwtScheme(def: JsonObject): JsonObject {
  const schemes = objectAt(def, 'x-tyk-api-gateway', 'server', 'authentication', 'securitySchemes');
  for (const scheme of Object.values(schemes)) {
    if (isObject(scheme) && ('signingMethod' in scheme || 'jwksURIs' in scheme || 'source' in scheme)) return scheme;
  }
  return {};
}

function oasView(def: JsonObject): TykApiView {
  const info = objectAt(def, 'x-tyk-api-gateway', 'info');
  const authentication = objectAt(def, 'x-tyk-api-gateway', 'server', 'authentication');
  const jwt = oasJwtScheme(def);
  const mapping = objectAt(jwt, 'scopes').scopeToPolicyMapping;
  return {
    apiId: text(info.id),
    name: text(info.name),
    orgId: text(info.orgId),
    format: 'oas',
    oasKnown: true,
    jwtEnabled: authentication.enabled === true && jwt.enabled === true,
    signingMethod: text(jwt.signingMethod),
    jwksUris: jwksUrisOf(jwt.jwksURIs, 'cacheTimeout'),
    source: decodeJwtSource(text(jwt.source)),
    headerEnabled: objectAt(jwt, 'header').enabled === true,
    policyFieldName: text(jwt.policyFieldName),
    scopeMappedPolicies: Array.isArray(mapping) ? mapping.filter(isObject).map((entry) => text(entry.policyId)).filter((id) => id !== '') : [],
    allowedIssuers: strings(jwt.allowedIssuers),
    allowedAudiences: strings(jwt.allowedAudiences),
  };
}

/**
 * Reads the gateway's API list, replacing each Tyk OAS API's classic form by its OAS document when `oasList` has
 * it. A list entry that is itself an OAS document is read as one. Throws when `apis` is not an array. Pure.
 */
export function tykApiViews(apis: unknown, oasList: unknown): TykApiView[] {
  if (!Array.isArray(apis)) throw new Error('the API list is not a JSON array');
  const oasById = new Map<string, JsonObject>();
  if (Array.isArray(oasList)) {
    for (const doc of oasList.filter(isObject)) oasById.set(text(objectAt(doc, 'x-tyk-api-gateway', 'info').id), doc);
  }
  return apis.filter(isObject).map((def) => {
    if (isObject(def['x-tyk-api-gateway'])) return oasView(def);
    const oas = def.is_oas === true ? oasById.get(text(def.api_id)) : undefined;
    return oas !== undefined ? oasView(oas) : classicView(def);
  });
}
