import { createHash, createPublicKey, createSecretKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';

/**
 * A stand-in for the Tyk Gateway on loopback, built from /work/shared/reference/tyk-jwt.md (Tyk's mw_jwt.go and
 * docs), independently of src/tools/tyk-kit and src/tools/doctor so that tests of those check them against a second reading.
 *
 * Two faces:
 *
 * 1. The gateway REST API over HTTP (`url`), as `token-broker doctor` and operators' scripts call it. Every
 *    `/tyk/...` path needs the header `x-tyk-authorization: <secret>`, else 403
 *    `{"status":"error","message":"Attempted administrative access with invalid or missing key!"}`.
 *    `/hello` is open, as on the real gateway.
 *      GET    /hello                -> {"status":"pass","version":"v5.8.x","description":"Tyk GW","details":{...}}
 *      GET    /tyk/policies         -> every policy (array)
 *      GET    /tyk/apis             -> every API as a classic definition: classic ones as loaded, Tyk OAS ones in the
 *                                      classic form the real gateway derives (`is_oas: true`, `jwt_jwks_uris`, ...)
 *      GET    /tyk/apis/oas         -> the Tyk OAS definitions only, as loaded
 *      POST   /tyk/keys/create      -> {org_id, apply_policies, expires, alias}: {"key","status":"ok","action":"added",
 *                                      "key_hash"}; 400 when a policy in apply_policies does not exist
 *      GET    /tyk/keys/{key}       -> the key's session, or 404
 *      DELETE /tyk/keys/{key}       -> {"key","status":"ok","action":"deleted"}; 404 {"status":"error","message":
 *                                      "There is no such key found"} for a key it does not hold (gateway/api.go
 *                                      handleDeleteKey); a deleted key is refused by `proxy` like an unknown one
 *      DELETE /tyk/cache/jwks/{id}  -> flushes one API's JWKS cache (v5.10+)
 *      GET    /tyk/reload/group     -> {"status":"ok","message":""}
 *
 * 2. `proxy(listenPath, token)`: "a stand-in Tyk check" of a bearer JWT, in process, applying Tyk's JWT rules to the
 *    API listening on that path and answering `{status, body}` with Tyk's status codes and messages (body
 *    `{"error": "..."}`), plus a stand-in-only `reason` code and `detail` saying which rule decided (the real
 *    gateway logs those; it never sends them). What it models, in order:
 *      - no token: 400 "Authorization field missing"; a Tyk OAS API without the `header` block reads no header, so
 *        every request is "missing" the token there too;
 *      - the header's `alg` must be in the API's signing family (rsa: RS and PS; ecdsa: ES; hmac: HS), else 403;
 *      - JWKS sources (OAS `jwksURIs`, classic `jwt_jwks_uris`, else `jwt_source`): the header's `kid` must be a
 *        string; exact `kid` match, first hit, no `alg`/`use` filtering; the key set is cached per API and URL for
 *        `cacheTimeout` (default `jwksCacheSeconds`, 240 s) on the injected clock, and an unknown `kid` NEVER
 *        refetches (TykTechnologies/tyk#6378): 403 "Key not authorized" until the cache expires. Tyk OAS APIs
 *        prefetch their `jwksURIs` when added. A failed fetch: 403 "Key not authorized";
 *      - `jwt_source` holding a plain http(s) URL works for the first request only, then 403 ("illegal base64
 *        data", TykTechnologies/tyk#7461, as on v5.9+ whatever /hello reports); base64 of a URL is a JWKS URL, base64 of a PEM a public key or
 *        certificate, anything else an HMAC secret;
 *      - signature, then `exp` (now - skew < exp, 401 "token has expired"), `iat` (iat <= now + skew, 401 "token
 *        used before issued"), `nbf` (nbf <= now + skew, 401 "token is not valid yet"); skews default 0; a claim
 *        that is absent or not a number is not checked, so a token without `exp` passes;
 *      - Tyk OAS only: `allowedIssuers`, `allowedAudiences`, `allowedSubjects` (v5.10 semantics, 401 when set and
 *        not met); classic APIs never look at `iss` or `aud`;
 *      - identity: OAS `subjectClaims`, else `identityBaseField` / `jwt_identity_base_field` (dot paths), else `sub`;
 *      - `client_id`/`cid`/`clientId` claims count an OAuth-client lookup (see `oauthClientLookups`) unless the API
 *        sets `idpClientIdMappingDisabled`; the stand-in has no OAuth clients and carries on;
 *      - base policy from the claim named by `policyFieldName` / `jwt_policy_field_name` (read only when set), else
 *        the default policies, else 403 "key not authorized: no matching policy", which is also the answer when the
 *        policy does not exist or belongs to another org;
 *      - scopes: when a scope-to-policy mapping is set, the scope claim (default `scope`; a string split on single
 *        spaces, or an array) adds the mapped policies; mapped policies Tyk does not have are skipped, as Tyk logs
 *        and skips them;
 *      - the policies together must grant the API (`access_rights`), else 403 "Access to this API has been
 *        disallowed";
 *      - an API without JWT (classic `enable_jwt` not true, `use_keyless` false) takes Tyk auth tokens: a key from
 *        POST /tyk/keys/create, else 403 "Access to this API has been disallowed" (gateway/mw_auth_key.go); a key
 *        past its `expires`: 401 "Key has expired, please renew"; its session is its `apply_policies`;
 *      - then the middleware chain of gateway/api_loader.go, in its order: AccessRightsCheck (above),
 *        GranularAccessMiddleware, RateLimitAndQuotaCheck. Policies merge per API as internal/policy/apply.go
 *        does: allowed_urls are the union of every applied policy's entries for the API (MergeAllowedURLs: so a
 *        whole-API policy, `[]`, merged with a route-limited one is route-limited), the rate is the highest one
 *        (ApplyRateLimits: the shorter rate/per duration wins), the quota likewise the largest;
 *      - allowed_urls (gateway/mw_granular_access.go, internal/httputil/mux.go): empty opens everything; else an
 *        entry must list the method (exact string) and its `url` match: every `{...}` becomes `([^/]+)`, the
 *        pattern is an unanchored regular expression tried on the full request path (with `pathPrefixMatching`,
 *        a pattern starting with "/" gets "^" and the listen-path-stripped path is tried too); a pattern that
 *        does not compile is skipped; no match: 403 "Access to this resource has been disallowed";
 *      - rate limit (gateway/mw_rate_limiting.go): more than `rate` requests within `per` seconds for one session
 *        and API: 429 "Rate limit exceeded". The stand-in counts a sliding window on its clock; Tyk's default
 *        limiter (DRL) is a per-gateway token bucket that answers the same for a burst, not always at the edge;
 *      - quota: more than `quota_max` (when > 0) requests within `quota_renewal_rate` seconds: 403 "Quota exceeded";
 *      - success: 200, and the session keyed on md5(identity) is recorded (see `sessions`). Not modelled: a session
 *        keeping an old policy when the claim changes (issues #1379, #1552), partitioned policies, per-API
 *        `limit` blocks, upstreams.
 *    The wording of the OAS issuer/audience/subject refusals is the stand-in's; the reference gives only the status.
 */

/** A JSON object as the stand-in stores definitions and policies: whatever the test handed in. */
type JsonObject = Record<string, unknown>;

/** Why `proxy` answered as it did: stand-in only, for assertions (Tyk logs the equivalent, never sends it). */
export type StandInTykProxyReason =
  | 'ok'
  | 'no_api'
  | 'no_token'
  | 'malformed_token'
  | 'unexpected_signing_method'
  | 'kid_not_string'
  | 'jwt_source_plain_url'
  | 'jwt_source_invalid'
  | 'jwks_fetch_failed'
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  | 'used_before_issued'
  | 'not_valid_yet'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'invalid_subject'
  | 'no_identity'
  | 'no_policy'
  | 'policy_not_found'
  | 'policy_org_mismatch'
  | 'access_disallowed'
  | 'key_not_found'
  | 'key_expired'
  | 'resource_disallowed'
  | 'rate_limited'
  | 'quota_exceeded';

/** What the stand-in answers a proxied request with. */
export interface StandInTykProxyResult {
  readonly status: number;
  /** Tyk's body: `{"error": message}` on refusal; on success what the upstream call would carry. */
  readonly body: { readonly error: string } | StandInTykProxySuccess;
  readonly reason: StandInTykProxyReason;
  /** A human explanation of the reason, e.g. "Unexpected signing method: ES256 and not rsa". */
  readonly detail: string;
}

/** The session a successful request runs under. */
export interface StandInTykProxySuccess {
  readonly api_id: string;
  readonly identity: string;
  /** md5(identity) in hex: every token with the same identity shares this session (rate limit, quota). */
  readonly session_key: string;
  /** The base policy first, then the scope-mapped ones. */
  readonly policies: readonly string[];
}

/** A key created through POST /tyk/keys/create. */
export interface StandInTykKey {
  readonly key: string;
  readonly keyHash: string;
  readonly orgId: string;
  readonly applyPolicies: readonly string[];
  /** Unix seconds, as posted; 0 or negative: never. */
  readonly expires: number;
  readonly alias: string;
  /** When it was created, on the stand-in's clock (ms). */
  readonly createdAt: number;
}

/** A JWT session recorded by a successful `proxy` call. */
export interface StandInTykSession {
  readonly identity: string;
  readonly apiId: string;
  readonly policies: readonly string[];
  /** The token's `exp`, copied onto the session, or undefined. */
  readonly expires: number | undefined;
}

export interface StandInTykOptions {
  /** The gateway secret (`x-tyk-authorization`). Default: a random string. */
  readonly secret?: string;
  /** The gateway's clock (ms): JWKS cache lifetimes, time claims, key creation. Default Date.now. */
  readonly now?: () => number;
  /** What /hello reports. Default "v5.8.2". */
  readonly version?: string;
  /** Gateway-wide JWKS cache lifetime (`jwks.cache.timeout`), used when an API gives no cacheTimeout. Default 240. */
  readonly jwksCacheSeconds?: number;
  /** How long one JWKS fetch may take. Default 5000 ms. */
  readonly fetchTimeoutMs?: number;
  /**
   * `http_server_options.enable_path_prefix_matching` (default false, as in Tyk): allowed_urls patterns starting
   * with "/" get a leading "^" and are tried on the path with the listen path stripped as well as the full one.
   */
  readonly pathPrefixMatching?: boolean;
  /** `http_server_options.enable_path_suffix_matching` (default false): a "$" is appended to every pattern. */
  readonly pathSuffixMatching?: boolean;
}

export interface StandInTyk {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly secret: string;
  /** Adds or replaces (by `id`) a policy, as if loaded from policies.policy_path. */
  addPolicy(policy: object): void;
  removePolicy(id: string): void;
  /**
   * Adds or replaces (by api_id / x-tyk-api-gateway.info.id) an API definition, classic or Tyk OAS, and resolves
   * once a Tyk OAS API's jwksURIs are prefetched (a failed prefetch is ignored, as Tyk only logs it).
   */
  addApi(definition: object): Promise<void>;
  removeApi(apiId: string): void;
  /** While down, every HTTP connection is dropped without an answer and `proxy` rejects. */
  setDown(down: boolean): void;
  /** HTTP requests received, by path (counted even while down or unauthorised). */
  readonly requests: ReadonlyMap<string, number>;
  /** How many requests a path received. */
  requestCount(path: string): number;
  /** JWKS fetches made for proxied requests and prefetches, by URL. */
  readonly jwksFetches: ReadonlyMap<string, number>;
  /** Keys created through POST /tyk/keys/create, in order (deleted ones included). */
  readonly createdKeys: readonly StandInTykKey[];
  /** Keys removed through DELETE /tyk/keys/{key}. */
  readonly deletedKeys: ReadonlySet<string>;
  /** JWT sessions by md5(identity). */
  readonly sessions: ReadonlyMap<string, StandInTykSession>;
  /** OAuth-client lookups Tyk would have made (client_id/cid/clientId claims without the mapping disabled). */
  readonly oauthClientLookups: number;
  /** Drops the cached key sets of one API, or of all: like DELETE /tyk/cache/jwks/{apiID}. */
  flushJwksCache(apiId?: string): void;
  /**
   * Applies Tyk's rules to `token` (a leading "Bearer " is stripped; undefined or empty: no Authorization header)
   * for `method` (default GET) on `path`, at the API whose listen path is the longest prefix of `path`: a compact
   * JWT on a JWT API, a key from POST /tyk/keys/create on an auth-token API; then the policies' access rights,
   * allowed_urls, rate limit and quota.
   */
  proxy(path: string, token: string | undefined, method?: string): Promise<StandInTykProxyResult>;
  close(): Promise<void>;
}

const ADMIN_REFUSAL = { status: 'error', message: 'Attempted administrative access with invalid or missing key!' };
const NOT_AUTHORIZED = 'Key not authorized';
const NO_MATCHING_POLICY = 'key not authorized: no matching policy';
const DISALLOWED = 'Access to this API has been disallowed';
const RESOURCE_DISALLOWED = 'Access to this resource has been disallowed';
const CLIENT_ID_CLAIMS = ['client_id', 'cid', 'clientId'];

const FAMILIES: Readonly<Record<string, readonly string[]>> = {
  rsa: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  ecdsa: ['ES256', 'ES384', 'ES512'],
  hmac: ['HS256', 'HS384', 'HS512'],
};

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function objectAt(value: unknown, ...path: string[]): JsonObject {
  let current: unknown = value;
  for (const key of path) current = isObject(current) ? current[key] : undefined;
  return isObject(current) ? current : {};
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function numberOf(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Go's time.ParseDuration for the units Tyk's readable durations use ("240s", "4m", "1h30m", "500ms"). */
export function parseGoDurationSeconds(text: string): number | undefined {
  const match = /^((\d+(\.\d+)?)(h|ms|m|s))+$/.exec(text);
  if (match === null) return undefined;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let seconds = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) seconds += Number(part[1]) * (unit[part[2] ?? 's'] ?? 0);
  return seconds;
}

/** Where the API's verification keys come from. */
type KeySource =
  | { readonly kind: 'jwks'; readonly urls: readonly { readonly url: string; readonly cacheSeconds: number | undefined }[] }
  | { readonly kind: 'plain-url'; readonly url: string }
  | { readonly kind: 'pem'; readonly key: KeyObject }
  | { readonly kind: 'hmac'; readonly secret: KeyObject }
  | { readonly kind: 'invalid'; readonly why: string };

/** One API's JWT settings, read from either definition format. */
interface ApiView {
  readonly apiId: string;
  readonly orgId: string;
  readonly name: string;
  readonly listenPath: string;
  readonly active: boolean;
  readonly isOas: boolean;
  readonly jwtEnabled: boolean;
  /** Tyk OAS reads the Authorization header only with the `header` block enabled. */
  readonly readsHeader: boolean;
  readonly signingMethod: string;
  readonly keySource: KeySource;
  readonly subjectClaims: readonly string[];
  readonly identityBaseField: string;
  readonly policyFieldName: string;
  readonly defaultPolicies: readonly string[];
  readonly scopeClaimName: string;
  readonly scopeToPolicy: ReadonlyMap<string, string>;
  readonly skews: { readonly exp: number; readonly iat: number; readonly nbf: number };
  readonly disabled: { readonly exp: boolean; readonly iat: boolean; readonly nbf: boolean };
  readonly allowedIssuers: readonly string[];
  readonly allowedAudiences: readonly string[];
  readonly allowedSubjects: readonly string[];
  readonly clientIdMappingDisabled: boolean;
}

function keySourceOf(source: string, jwksUris: readonly { url: string; cacheSeconds: number | undefined }[]): KeySource {
  if (jwksUris.length > 0) return { kind: 'jwks', urls: jwksUris };
  if (/^https?:\/\//i.test(source)) return { kind: 'plain-url', url: source };
  if (source === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(source)) return { kind: 'invalid', why: `jwt_source is not base64: illegal base64 data` };
  const decoded = Buffer.from(source, 'base64').toString('utf8');
  if (/^https?:\/\//i.test(decoded)) return { kind: 'jwks', urls: [{ url: decoded, cacheSeconds: undefined }] };
  if (decoded.includes('-----BEGIN CERTIFICATE-----')) {
    try {
      return { kind: 'pem', key: new X509Certificate(decoded).publicKey };
    } catch (error) {
      return { kind: 'invalid', why: `jwt_source certificate: ${String(error)}` };
    }
  }
  if (decoded.includes('-----BEGIN')) {
    try {
      return { kind: 'pem', key: createPublicKey(decoded) };
    } catch (error) {
      return { kind: 'invalid', why: `jwt_source PEM: ${String(error)}` };
    }
  }
  return { kind: 'hmac', secret: createSecretKey(Buffer.from(decoded, 'utf8')) };
}

function classicView(def: JsonObject): ApiView {
  const scopes = objectAt(def, 'scopes', 'jwt');
  const mapping = isObject(scopes.scope_to_policy) ? scopes.scope_to_policy : objectAt(def, 'jwt_scope_to_policy_mapping');
  const jwksUris = (Array.isArray(def.jwt_jwks_uris) ? def.jwt_jwks_uris : []).filter(isObject).flatMap((entry) => {
    const url = stringOf(entry.url);
    const timeout = stringOf(entry.cache_timeout);
    return url === undefined ? [] : [{ url, cacheSeconds: timeout === undefined ? undefined : parseGoDurationSeconds(timeout) }];
  });
  return {
    apiId: stringOf(def.api_id) ?? '',
    orgId: stringOf(def.org_id) ?? '',
    name: stringOf(def.name) ?? '',
    listenPath: stringOf(objectAt(def, 'proxy').listen_path) ?? '/',
    active: def.active !== false,
    isOas: false,
    jwtEnabled: def.enable_jwt === true,
    readsHeader: true,
    signingMethod: stringOf(def.jwt_signing_method) ?? '',
    keySource: keySourceOf(stringOf(def.jwt_source) ?? '', jwksUris),
    subjectClaims: [],
    identityBaseField: stringOf(def.jwt_identity_base_field) ?? '',
    policyFieldName: stringOf(def.jwt_policy_field_name) ?? '',
    defaultPolicies: stringsOf(def.jwt_default_policies),
    scopeClaimName: stringOf(scopes.scope_claim_name) ?? stringOf(def.jwt_scope_claim_name) ?? 'scope',
    scopeToPolicy: new Map(Object.entries(mapping).flatMap(([scope, policy]) => (typeof policy === 'string' ? [[scope, policy] as const] : []))),
    skews: {
      exp: numberOf(def.jwt_expires_at_validation_skew),
      iat: numberOf(def.jwt_issued_at_validation_skew),
      nbf: numberOf(def.jwt_not_before_validation_skew),
    },
    disabled: {
      exp: def.jwt_disable_expires_at_validation === true,
      iat: def.jwt_disable_issued_at_validation === true,
      nbf: def.jwt_disable_not_before_validation === true,
    },
    allowedIssuers: [],
    allowedAudiences: [],
    allowedSubjects: [],
    clientIdMappingDisabled: def.idp_client_id_mapping_disabled === true,
  };
}

/** The JWT security scheme of a Tyk OAS definition: the first enabled scheme that looks like one. */
function oasJwtScheme(def: JsonObject): JsonObject {
  const schemes = objectAt(def, 'x-tyk-api-gateway', 'server', 'authentication', 'securitySchemes');
  for (const scheme of Object.values(schemes)) {
    if (isObject(scheme) && ('signingMethod' in scheme || 'jwksURIs' in scheme || 'source' in scheme)) return scheme;
  }
  return {};
}

function oasView(def: JsonObject): ApiView {
  const tyk = objectAt(def, 'x-tyk-api-gateway');
  const authentication = objectAt(tyk, 'server', 'authentication');
  const jwt = oasJwtScheme(def);
  const scopes = objectAt(jwt, 'scopes');
  const jwksUris = (Array.isArray(jwt.jwksURIs) ? jwt.jwksURIs : []).filter(isObject).flatMap((entry) => {
    const url = stringOf(entry.url);
    const timeout = stringOf(entry.cacheTimeout);
    return url === undefined ? [] : [{ url, cacheSeconds: timeout === undefined ? undefined : parseGoDurationSeconds(timeout) }];
  });
  const mapping = (Array.isArray(scopes.scopeToPolicyMapping) ? scopes.scopeToPolicyMapping : []).filter(isObject).flatMap((entry) => {
    const scope = stringOf(entry.scope);
    const policyId = stringOf(entry.policyId);
    return scope === undefined || policyId === undefined ? [] : [[scope, policyId] as const];
  });
  return {
    apiId: stringOf(objectAt(tyk, 'info').id) ?? '',
    orgId: stringOf(objectAt(tyk, 'info').orgId) ?? '',
    name: stringOf(objectAt(tyk, 'info').name) ?? '',
    listenPath: stringOf(objectAt(tyk, 'server', 'listenPath').value) ?? '/',
    active: objectAt(tyk, 'info', 'state').active !== false,
    isOas: true,
    jwtEnabled: authentication.enabled === true && jwt.enabled === true,
    readsHeader: objectAt(jwt, 'header').enabled === true,
    signingMethod: stringOf(jwt.signingMethod) ?? '',
    keySource: keySourceOf(stringOf(jwt.source) ?? '', jwksUris),
    subjectClaims: stringsOf(jwt.subjectClaims),
    identityBaseField: stringOf(jwt.identityBaseField) ?? '',
    policyFieldName: stringOf(jwt.policyFieldName) ?? '',
    defaultPolicies: stringsOf(jwt.defaultPolicies),
    scopeClaimName: stringOf(scopes.claimName) ?? 'scope',
    scopeToPolicy: new Map(mapping),
    skews: { exp: numberOf(jwt.expiresAtValidationSkew), iat: numberOf(jwt.issuedAtValidationSkew), nbf: numberOf(jwt.notBeforeValidationSkew) },
    disabled: { exp: false, iat: false, nbf: false },
    allowedIssuers: stringsOf(jwt.allowedIssuers),
    allowedAudiences: stringsOf(jwt.allowedAudiences),
    allowedSubjects: stringsOf(jwt.allowedSubjects),
    clientIdMappingDisabled: jwt.idpClientIdMappingDisabled === true,
  };
}

/** The classic form the real gateway lists a Tyk OAS API in (GET /tyk/apis). */
function classicFormOf(def: JsonObject): JsonObject {
  const view = oasView(def);
  const jwt = oasJwtScheme(def);
  const jwksUris = (Array.isArray(jwt.jwksURIs) ? jwt.jwksURIs : []).filter(isObject).map((entry) => ({
    url: entry.url,
    ...(entry.cacheTimeout !== undefined && { cache_timeout: entry.cacheTimeout }),
  }));
  return {
    name: view.name,
    api_id: view.apiId,
    org_id: view.orgId,
    active: view.active,
    is_oas: true,
    use_keyless: false,
    enable_jwt: view.jwtEnabled,
    jwt_signing_method: view.signingMethod,
    jwt_source: stringOf(jwt.source) ?? '',
    jwt_jwks_uris: jwksUris,
    jwt_identity_base_field: view.identityBaseField,
    jwt_policy_field_name: view.policyFieldName,
    jwt_default_policies: view.defaultPolicies,
    jwt_scope_claim_name: view.scopeClaimName,
    jwt_scope_to_policy_mapping: Object.fromEntries(view.scopeToPolicy),
    jwt_issued_at_validation_skew: view.skews.iat,
    jwt_not_before_validation_skew: view.skews.nbf,
    jwt_expires_at_validation_skew: view.skews.exp,
    idp_client_id_mapping_disabled: view.clientIdMappingDisabled,
    proxy: { listen_path: view.listenPath, target_url: stringOf(objectAt(def, 'x-tyk-api-gateway', 'upstream').url) ?? '', strip_listen_path: true },
  };
}

function isOasDefinition(def: JsonObject): boolean {
  return isObject(def['x-tyk-api-gateway']);
}

function viewOf(def: JsonObject): ApiView {
  return isOasDefinition(def) ? oasView(def) : classicView(def);
}

/** A claim by dot path ("user.id"), as Tyk reads jwt_identity_base_field. */
function claimAt(claims: JsonObject, path: string): unknown {
  if (path in claims) return claims[path];
  let current: unknown = claims;
  for (const part of path.split('.')) current = isObject(current) ? current[part] : undefined;
  return current;
}

/** One allowed_urls entry as a policy holds it. */
interface AccessSpec {
  readonly url: string;
  readonly methods: readonly string[];
}

function accessSpecsOf(value: unknown): AccessSpec[] {
  return (Array.isArray(value) ? value : []).filter(isObject).map((entry) => ({ url: stringOf(entry.url) ?? '', methods: stringsOf(entry.methods) }));
}

/** MergeAllowedURLs (internal/policy/merge.go): union by url, methods merged, order of first sight. */
function mergeAllowedUrls(a: readonly AccessSpec[], b: readonly AccessSpec[]): AccessSpec[] {
  const merged = new Map<string, string[]>();
  for (const spec of [...a, ...b]) {
    const methods = merged.get(spec.url) ?? [];
    for (const method of spec.methods) if (!methods.includes(method)) methods.push(method);
    merged.set(spec.url, methods);
  }
  return [...merged].map(([url, methods]) => ({ url, methods }));
}

/**
 * GranularAccessMiddleware: whether one entry opens `method` on the request. `{...}` -> `([^/]+)`
 * (PreparePathRegexp); prefix mode adds "^" to a pattern starting with "/" and also tries the stripped path;
 * suffix mode appends "$". JavaScript's RegExp stands in for Go's RE2 on the patterns the tests use.
 */
function accessSpecOpens(spec: AccessSpec, method: string, fullPath: string, strippedPath: string, prefix: boolean, suffix: boolean): boolean {
  if (!spec.methods.includes(method)) return false;
  let pattern = spec.url.replace(/\{([^}]+)\}/g, '([^/]+)');
  if (prefix && pattern.startsWith('/')) pattern = `^${pattern}`;
  if (suffix && !pattern.endsWith('$')) pattern = `${pattern}$`;
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch {
    return false;
  }
  return prefix ? regex.test(strippedPath) || regex.test(fullPath) : regex.test(fullPath);
}

function refuse(status: number, error: string, reason: StandInTykProxyReason, detail: string): StandInTykProxyResult {
  return { status, body: { error }, reason, detail };
}

interface CachedKeys {
  readonly keys: readonly JWK[];
  readonly fetchedAt: number;
}

/** Starts the stand-in gateway on 127.0.0.1 with an ephemeral port. */
export async function startStandInTyk(options: StandInTykOptions = {}): Promise<StandInTyk> {
  const secret = options.secret ?? randomBytes(16).toString('hex');
  const now = options.now ?? Date.now;
  const version = options.version ?? 'v5.8.2';
  const defaultCacheSeconds = options.jwksCacheSeconds ?? 240;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5000;

  const policies = new Map<string, JsonObject>();
  const apis = new Map<string, JsonObject>();
  const requests = new Map<string, number>();
  const jwksFetches = new Map<string, number>();
  const createdKeys: StandInTykKey[] = [];
  const deletedKeys = new Set<string>();
  const liveKey = (name: string) => (deletedKeys.has(name) ? undefined : createdKeys.find((k) => k.key === name));
  const sessions = new Map<string, StandInTykSession>();
  /** Key sets by `${apiId}\n${url}`. */
  const jwksCache = new Map<string, CachedKeys>();
  /** Plain-URL jwt_source uses by API id: only the first one works (TykTechnologies/tyk#7461). */
  const plainUrlUses = new Map<string, number>();
  let oauthClientLookups = 0;
  let down = false;
  const prefixMatching = options.pathPrefixMatching ?? false;
  const suffixMatching = options.pathSuffixMatching ?? false;
  /** Request times (ms) by `${sessionKey}\n${apiId}`, for the rate limit. */
  const rateWindows = new Map<string, number[]>();
  /** Quota use by `${sessionKey}\n${apiId}`: count and when the period started. */
  const quotas = new Map<string, { used: number; since: number }>();

  function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > 1024 * 1024) throw new Error('body too large');
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  function sessionOf(key: StandInTykKey): JsonObject {
    const accessRights: JsonObject = {};
    for (const id of key.applyPolicies) Object.assign(accessRights, objectAt(policies.get(id), 'access_rights'));
    const first = policies.get(key.applyPolicies[0] ?? '') ?? {};
    return {
      org_id: key.orgId,
      alias: key.alias,
      expires: key.expires,
      apply_policies: key.applyPolicies,
      access_rights: accessRights,
      rate: numberOf(first.rate),
      per: numberOf(first.per),
      quota_max: typeof first.quota_max === 'number' ? first.quota_max : -1,
      quota_renewal_rate: numberOf(first.quota_renewal_rate),
      is_inactive: false,
      date_created: new Date(key.createdAt).toISOString(),
    };
  }

  async function createKey(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      send(res, 400, { status: 'error', message: 'Request malformed' });
      return;
    }
    if (!isObject(body)) {
      send(res, 400, { status: 'error', message: 'Request malformed' });
      return;
    }
    const applyPolicies = stringsOf(body.apply_policies);
    const missing = applyPolicies.filter((id) => !policies.has(id));
    if (missing.length > 0) {
      send(res, 400, { status: 'error', message: `Failed to create key: policy not found: ${missing.join(', ')}` });
      return;
    }
    const orgId = stringOf(body.org_id) ?? '';
    // Real keys are the org id followed by 32 hex characters.
    const key = `${orgId}${randomBytes(16).toString('hex')}`;
    const record: StandInTykKey = {
      key,
      // The real gateway hashes with murmur64 by default; the value is opaque to callers either way.
      keyHash: createHash('sha256').update(key).digest('hex').slice(0, 16),
      orgId,
      applyPolicies,
      expires: numberOf(body.expires),
      alias: stringOf(body.alias) ?? '',
      createdAt: now(),
    };
    createdKeys.push(record);
    send(res, 200, { key, status: 'ok', action: 'added', key_hash: record.keyHash });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    if (down) {
      req.socket.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    if (path === '/hello' && method === 'GET') {
      send(res, 200, {
        status: 'pass',
        version,
        description: 'Tyk GW',
        details: { redis: { status: 'pass', componentType: 'datastore', time: new Date(now()).toISOString() } },
      });
      return;
    }
    if (!path.startsWith('/tyk/')) {
      send(res, 404, { error: 'Not Found' });
      return;
    }
    if (req.headers['x-tyk-authorization'] !== secret) {
      send(res, 403, ADMIN_REFUSAL);
      return;
    }
    if (path === '/tyk/policies' && method === 'GET') {
      send(res, 200, [...policies.values()]);
    } else if (path === '/tyk/apis' && method === 'GET') {
      send(res, 200, [...apis.values()].map((def) => (isOasDefinition(def) ? classicFormOf(def) : def)));
    } else if (path === '/tyk/apis/oas' && method === 'GET') {
      send(res, 200, [...apis.values()].filter(isOasDefinition));
    } else if (path === '/tyk/keys/create' && method === 'POST') {
      await createKey(req, res);
    } else if (path.startsWith('/tyk/keys/') && method === 'GET') {
      const name = decodeURIComponent(path.slice('/tyk/keys/'.length));
      const key = liveKey(name);
      if (key === undefined) send(res, 404, { status: 'error', message: 'Key not found' });
      else send(res, 200, sessionOf(key));
    } else if (path.startsWith('/tyk/keys/') && method === 'DELETE') {
      const name = decodeURIComponent(path.slice('/tyk/keys/'.length));
      if (liveKey(name) === undefined) send(res, 404, { status: 'error', message: 'There is no such key found' });
      else {
        deletedKeys.add(name);
        send(res, 200, { key: name, status: 'ok', action: 'deleted' });
      }
    } else if (path.startsWith('/tyk/cache/jwks/') && method === 'DELETE') {
      flushJwksCache(decodeURIComponent(path.slice('/tyk/cache/jwks/'.length)));
      send(res, 200, { status: 'ok', message: 'cache invalidated' });
    } else if (path === '/tyk/reload/group' && method === 'GET') {
      send(res, 200, { status: 'ok', message: '' });
    } else {
      send(res, 404, { status: 'error', message: 'Not found' });
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { status: 'error', message: String(error) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function flushJwksCache(apiId?: string): void {
    for (const key of [...jwksCache.keys()]) if (apiId === undefined || key.startsWith(`${apiId}\n`)) jwksCache.delete(key);
  }

  async function fetchJwks(apiId: string, jwksUrl: string, cacheSeconds: number | undefined): Promise<readonly JWK[]> {
    const cacheKey = `${apiId}\n${jwksUrl}`;
    const cached = jwksCache.get(cacheKey);
    const lifetimeMs = (cacheSeconds ?? defaultCacheSeconds) * 1000;
    if (cached !== undefined && now() - cached.fetchedAt < lifetimeMs) return cached.keys;
    jwksFetches.set(jwksUrl, (jwksFetches.get(jwksUrl) ?? 0) + 1);
    const response = await fetch(jwksUrl, { signal: AbortSignal.timeout(fetchTimeoutMs), redirect: 'manual' });
    if (!response.ok) throw new Error(`JWKS ${jwksUrl} answered HTTP ${response.status}`);
    const document: unknown = await response.json();
    const keys = isObject(document) && Array.isArray(document.keys) ? document.keys.filter(isObject) : undefined;
    if (keys === undefined) throw new Error(`JWKS ${jwksUrl} has no "keys" array`);
    jwksCache.set(cacheKey, { keys: keys as JWK[], fetchedAt: now() });
    return keys as JWK[];
  }

  /** Finds the verification key for the token's header, or the refusal. */
  async function keyFor(api: ApiView, header: JsonObject): Promise<{ key: KeyObject | Awaited<ReturnType<typeof importJWK>> } | StandInTykProxyResult> {
    const alg = stringOf(header.alg) ?? '';
    const source = api.keySource;
    if (source.kind === 'invalid') return refuse(403, NOT_AUTHORIZED, 'jwt_source_invalid', source.why);
    if (source.kind === 'pem') return { key: source.key };
    if (source.kind === 'hmac') return { key: source.secret };
    let urls: readonly { url: string; cacheSeconds: number | undefined }[];
    if (source.kind === 'plain-url') {
      const uses = (plainUrlUses.get(api.apiId) ?? 0) + 1;
      plainUrlUses.set(api.apiId, uses);
      if (uses > 1) {
        return refuse(403, NOT_AUTHORIZED, 'jwt_source_plain_url', 'jwt_source holds a plain URL: illegal base64 data after the first request (TykTechnologies/tyk#7461)');
      }
      urls = [{ url: source.url, cacheSeconds: undefined }];
    } else {
      urls = source.urls;
    }
    const kid = header.kid;
    if (typeof kid !== 'string') return refuse(403, NOT_AUTHORIZED, 'kid_not_string', 'kid is not a string');
    for (const { url: jwksUrl, cacheSeconds } of urls) {
      let keys: readonly JWK[];
      try {
        keys = await fetchJwks(api.apiId, jwksUrl, cacheSeconds);
      } catch (error) {
        return refuse(403, NOT_AUTHORIZED, 'jwks_fetch_failed', error instanceof Error ? error.message : String(error));
      }
      // Exact kid, first hit, no alg or use filtering.
      const jwk = keys.find((candidate) => candidate.kid === kid);
      if (jwk === undefined) continue;
      try {
        return { key: await importJWK({ ...jwk, alg }, alg) };
      } catch (error) {
        return refuse(403, NOT_AUTHORIZED, 'bad_signature', `key ${kid} cannot verify ${alg}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return refuse(403, NOT_AUTHORIZED, 'unknown_kid', `no key with kid ${kid} in the cached key set (no refetch until the cache expires)`);
  }

  function policyUsable(id: string, api: ApiView): 'ok' | 'policy_not_found' | 'policy_org_mismatch' {
    const policy = policies.get(id);
    if (policy === undefined) return 'policy_not_found';
    if (stringOf(policy.org_id) !== api.orgId) return 'policy_org_mismatch';
    return 'ok';
  }

  /**
   * After authentication: AccessRightsCheck, GranularAccessMiddleware, RateLimitAndQuotaCheck, in the order of
   * gateway/api_loader.go, over the applied policies merged per API as internal/policy/apply.go merges them.
   */
  function authorise(api: ApiView, sessionKey: string, applied: readonly string[], method: string, path: string): StandInTykProxyResult | undefined {
    const granting = applied.map((id) => policies.get(id)).filter((policy): policy is JsonObject => policy !== undefined && api.apiId in objectAt(policy, 'access_rights'));
    if (granting.length === 0) return refuse(403, DISALLOWED, 'access_disallowed', `none of ${applied.join(', ')} has ${api.apiId} in access_rights`);

    const allowedUrls = granting.reduce<AccessSpec[]>((merged, policy) => mergeAllowedUrls(merged, accessSpecsOf(objectAt(policy, 'access_rights', api.apiId).allowed_urls)), []);
    const stripped = path.startsWith(api.listenPath) ? `/${path.slice(api.listenPath.length)}`.replace(/^\/\//, '/') : path;
    if (allowedUrls.length > 0 && !allowedUrls.some((spec) => accessSpecOpens(spec, method, path, stripped, prefixMatching, suffixMatching))) {
      return refuse(403, RESOURCE_DISALLOWED, 'resource_disallowed', `${method} ${path}: no allowed_urls entry of ${api.apiId} opens it`);
    }

    // The policy allowing the most requests sets the rate (the shortest per/rate); likewise the largest quota.
    const limits = granting.map((policy) => ({ rate: numberOf(policy.rate), per: numberOf(policy.per), quotaMax: typeof policy.quota_max === 'number' ? policy.quota_max : -1, renewal: numberOf(policy.quota_renewal_rate) }));
    const rated = limits.filter((limit) => limit.rate > 0 && limit.per > 0).sort((a, b) => a.per / a.rate - b.per / b.rate)[0];
    const bucket = `${sessionKey}\n${api.apiId}`;
    const at = now();
    if (rated !== undefined) {
      const window = (rateWindows.get(bucket) ?? []).filter((t) => at - t < rated.per * 1000);
      if (window.length >= rated.rate) {
        rateWindows.set(bucket, window);
        return refuse(429, 'Rate limit exceeded', 'rate_limited', `more than ${rated.rate} requests in ${rated.per} s`);
      }
      window.push(at);
      rateWindows.set(bucket, window);
    }
    const quotaMax = limits.some((limit) => limit.quotaMax < 0) ? -1 : Math.max(...limits.map((limit) => limit.quotaMax));
    if (quotaMax > 0) {
      const renewal = Math.max(...limits.map((limit) => limit.renewal)) * 1000;
      const current = quotas.get(bucket);
      const quota = current === undefined || at - current.since >= renewal ? { used: 0, since: at } : current;
      if (quota.used >= quotaMax) return refuse(403, 'Quota exceeded', 'quota_exceeded', `${quotaMax} requests used`);
      quotas.set(bucket, { used: quota.used + 1, since: quota.since });
    }
    return undefined;
  }

  /** An auth-token API (gateway/mw_auth_key.go): the key must exist and not have expired. */
  function proxyKey(api: ApiView, raw: string, method: string, path: string): StandInTykProxyResult {
    if (raw === '') return refuse(401, 'Authorization field missing', 'no_token', 'no key');
    const key = liveKey(raw);
    if (key === undefined) return refuse(403, DISALLOWED, 'key_not_found', 'no such key');
    if (key.expires > 0 && key.expires <= Math.floor(now() / 1000)) return refuse(401, 'Key has expired, please renew', 'key_expired', `expired at ${key.expires}`);
    const refused = authorise(api, key.keyHash, key.applyPolicies, method, path);
    if (refused !== undefined) return refused;
    return { status: 200, body: { api_id: api.apiId, identity: key.alias, session_key: key.keyHash, policies: key.applyPolicies }, reason: 'ok', detail: 'authorised' };
  }

  async function proxy(path: string, token: string | undefined, method = 'GET'): Promise<StandInTykProxyResult> {
    if (down) throw new Error('the stand-in Tyk is down');
    const candidates = [...apis.values()].map(viewOf).filter((api) => api.active && path.startsWith(api.listenPath));
    const api = candidates.sort((a, b) => b.listenPath.length - a.listenPath.length)[0];
    if (api === undefined) return refuse(404, 'Not Found', 'no_api', `no active API listens on ${path}`);

    const raw = (token ?? '').replace(/^Bearer\s+/i, '');
    if (!api.jwtEnabled) {
      // A classic API without JWT takes Tyk auth tokens; the stand-in models no other authentication.
      if (!api.isOas) return proxyKey(api, raw, method, path);
      return refuse(403, NOT_AUTHORIZED, 'no_api', `API ${api.apiId} does not use JWT authentication`);
    }
    if (raw === '' || !api.readsHeader) {
      return refuse(400, 'Authorization field missing', 'no_token', raw === '' ? 'no token' : 'the Tyk OAS JWT scheme has no header block: Tyk reads no Authorization header');
    }
    let header: JsonObject;
    try {
      header = decodeProtectedHeader(raw) as JsonObject;
    } catch (error) {
      return refuse(403, NOT_AUTHORIZED, 'malformed_token', error instanceof Error ? error.message : String(error));
    }
    const alg = stringOf(header.alg) ?? '';
    if (!(FAMILIES[api.signingMethod] ?? []).includes(alg)) {
      return refuse(403, NOT_AUTHORIZED, 'unexpected_signing_method', `Unexpected signing method: ${alg} and not ${api.signingMethod || '(none)'}`);
    }
    const found = await keyFor(api, header);
    if ('status' in found) return found;
    let claims: JsonObject;
    try {
      const { payload } = await compactVerify(raw, found.key, { algorithms: [alg] });
      const parsed: unknown = JSON.parse(new TextDecoder().decode(payload));
      if (!isObject(parsed)) throw new Error('the payload is not a JSON object');
      claims = parsed;
    } catch (error) {
      return refuse(403, NOT_AUTHORIZED, 'bad_signature', error instanceof Error ? error.message : String(error));
    }

    const nowSeconds = Math.floor(now() / 1000);
    const { exp, iat, nbf } = claims;
    if (!api.disabled.exp && typeof exp === 'number' && !(nowSeconds - api.skews.exp < exp)) {
      return refuse(401, 'Key not authorized: token has expired', 'expired', `exp ${exp}, now ${nowSeconds}, skew ${api.skews.exp}`);
    }
    if (!api.disabled.iat && typeof iat === 'number' && !(iat <= nowSeconds + api.skews.iat)) {
      return refuse(401, 'Key not authorized: token used before issued', 'used_before_issued', `iat ${iat}, now ${nowSeconds}, skew ${api.skews.iat}`);
    }
    if (!api.disabled.nbf && typeof nbf === 'number' && !(nbf <= nowSeconds + api.skews.nbf)) {
      return refuse(401, 'Key not authorized: token is not valid yet', 'not_valid_yet', `nbf ${nbf}, now ${nowSeconds}, skew ${api.skews.nbf}`);
    }

    if (api.isOas) {
      if (api.allowedIssuers.length > 0 && !api.allowedIssuers.includes(stringOf(claims.iss) ?? '\u0000')) {
        return refuse(401, 'Key not authorized: invalid issuer claim', 'invalid_issuer', `iss ${JSON.stringify(claims.iss)} not in ${JSON.stringify(api.allowedIssuers)}`);
      }
      const audiences = typeof claims.aud === 'string' ? [claims.aud] : stringsOf(claims.aud);
      if (api.allowedAudiences.length > 0 && !audiences.some((aud) => api.allowedAudiences.includes(aud))) {
        return refuse(401, 'Key not authorized: invalid audience claim', 'invalid_audience', `aud ${JSON.stringify(claims.aud)} not in ${JSON.stringify(api.allowedAudiences)}`);
      }
      if (api.allowedSubjects.length > 0 && !api.allowedSubjects.includes(stringOf(claims.sub) ?? '\u0000')) {
        return refuse(401, 'Key not authorized: invalid subject claim', 'invalid_subject', `sub ${JSON.stringify(claims.sub)} not allowed`);
      }
    }

    const identityFields = [...api.subjectClaims, ...(api.identityBaseField !== '' ? [api.identityBaseField] : []), 'sub'];
    const identity = identityFields.map((field) => claimAt(claims, field)).find((value): value is string => typeof value === 'string' && value !== '');
    if (identity === undefined) return refuse(403, NOT_AUTHORIZED, 'no_identity', `none of ${identityFields.join(', ')} is a non-empty string claim`);

    if (!api.clientIdMappingDisabled && CLIENT_ID_CLAIMS.some((claim) => typeof claims[claim] === 'string')) oauthClientLookups += 1;

    const claimed = api.policyFieldName !== '' ? stringOf(claims[api.policyFieldName]) : undefined;
    const basePolicies = claimed !== undefined && claimed !== '' ? [claimed] : [...api.defaultPolicies];
    if (basePolicies.length === 0) {
      return refuse(403, NO_MATCHING_POLICY, 'no_policy', api.policyFieldName === '' ? 'no policy field name and no default policies' : `no "${api.policyFieldName}" claim and no default policies`);
    }
    for (const id of basePolicies) {
      const usable = policyUsable(id, api);
      if (usable !== 'ok') return refuse(403, NO_MATCHING_POLICY, usable, `policy ${id}: ${usable === 'policy_not_found' ? 'not found' : `org_id is not the API's ${api.orgId}`}`);
    }
    const applied = [...basePolicies];
    if (api.scopeToPolicy.size > 0) {
      const raw = claims[api.scopeClaimName];
      const scopes = typeof raw === 'string' ? raw.split(' ') : stringsOf(raw);
      for (const scope of scopes) {
        const mapped = api.scopeToPolicy.get(scope);
        if (mapped !== undefined && !applied.includes(mapped) && policyUsable(mapped, api) === 'ok') applied.push(mapped);
      }
    }
    const sessionKey = createHash('md5').update(identity).digest('hex');
    const refused = authorise(api, sessionKey, applied, method, path);
    if (refused !== undefined) return refused;
    sessions.set(sessionKey, { identity, apiId: api.apiId, policies: applied, expires: typeof exp === 'number' ? exp : undefined });
    return { status: 200, body: { api_id: api.apiId, identity, session_key: sessionKey, policies: applied }, reason: 'ok', detail: 'authorised' };
  }

  return {
    url,
    secret,
    addPolicy(policy) {
      const record = policy as JsonObject;
      const id = stringOf(record.id);
      if (id === undefined || id === '') throw new Error('a Tyk policy needs a string id');
      policies.set(id, structuredClone(record));
    },
    removePolicy(id) {
      policies.delete(id);
    },
    async addApi(definition) {
      const record = structuredClone(definition as JsonObject);
      const view = viewOf(record);
      if (view.apiId === '') throw new Error('an API definition needs api_id (classic) or x-tyk-api-gateway.info.id (OAS)');
      apis.set(view.apiId, record);
      flushJwksCache(view.apiId);
      plainUrlUses.delete(view.apiId);
      // Tyk OAS APIs fetch their jwksURIs when they load; a failure is only logged.
      if (view.isOas && view.keySource.kind === 'jwks') {
        for (const { url: jwksUrl, cacheSeconds } of view.keySource.urls) await fetchJwks(view.apiId, jwksUrl, cacheSeconds).catch(() => undefined);
      }
    },
    removeApi(apiId) {
      apis.delete(apiId);
      flushJwksCache(apiId);
    },
    setDown(value) {
      down = value;
    },
    requests,
    requestCount: (path) => requests.get(path) ?? 0,
    jwksFetches,
    createdKeys,
    deletedKeys,
    sessions,
    get oauthClientLookups() {
      return oauthClientLookups;
    },
    flushJwksCache,
    proxy,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
