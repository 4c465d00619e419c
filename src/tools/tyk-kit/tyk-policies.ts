import { tykAllowedUrl } from '../../server/config/tyk-route-pattern.js';

/**
 * Rate limit and quota of every generated policy. Tyk keys a JWT session on the token's identity (`sub`),
 * so these apply per workload identity (a service account, by default), not per API or per pod.
 */
export interface TykPolicyLimits {
  /** Requests allowed per `per` seconds. */
  readonly rate: number;
  readonly per: number;
  /** Requests per quota period; -1 is unlimited. */
  readonly quotaMax: number;
  /** Seconds after which the quota resets. */
  readonly quotaRenewalRate: number;
}

/**
 * Defaults: 100 requests per second per identity, which a batch step rarely reaches and a runaway loop
 * quickly does, and no quota, because workflow volume is bursty and a quota that ran out mid-run would fail
 * it. Operators tune both per policy in Tyk or with the command's flags.
 */
export const DEFAULT_POLICY_LIMITS: TykPolicyLimits = { rate: 100, per: 1, quotaMax: -1, quotaRenewalRate: 3600 };

/** The API a generated policy grants access to. */
export interface TykPolicyApi {
  readonly apiId: string;
  readonly apiName: string;
  readonly orgId: string;
}

/** One `allowed_urls` entry: a Tyk path pattern and the methods it opens (user.AccessSpec in Tyk's source). */
export interface TykAllowedUrl {
  readonly url: string;
  readonly methods: readonly string[];
}

/** One API in a policy's `access_rights` (user.AccessDefinition). */
export interface TykAccessDefinition {
  readonly api_id: string;
  readonly api_name: string;
  readonly versions: readonly ['Default'];
  /** Empty: every path and method of the API. Otherwise only requests one entry matches by path and method. */
  readonly allowed_urls: readonly TykAllowedUrl[];
}

/** A Tyk security policy as Tyk loads it from files (policies.policy_path or policy_record_name). */
export interface TykPolicy {
  readonly id: string;
  readonly name: string;
  readonly org_id: string;
  readonly active: true;
  readonly rate: number;
  readonly per: number;
  readonly quota_max: number;
  readonly quota_renewal_rate: number;
  /** -1: Tyk's "disabled" for throttling and GraphQL depth limits. */
  readonly throttle_interval: -1;
  readonly throttle_retry_limit: -1;
  readonly max_query_depth: -1;
  /** 0: the session lives as long as the JWT's `exp`, which Tyk copies onto it. */
  readonly key_expires_in: 0;
  readonly access_rights: Readonly<Record<string, TykAccessDefinition>>;
  readonly tags: readonly string[];
}

/** What one policy opens, as the broker configuration's `policies` block describes it. */
export interface TykPolicySpec {
  readonly apis: readonly {
    readonly apiId: string;
    readonly apiName?: string | undefined;
    readonly routes?: readonly { readonly methods: readonly string[]; readonly path: string }[] | undefined;
  }[];
  readonly rate?: number | undefined;
  readonly per?: number | undefined;
  readonly quotaMax?: number | undefined;
  readonly quotaRenewalRate?: number | undefined;
}

function policyOf(id: string, orgId: string, limits: TykPolicyLimits, accessRights: Record<string, TykAccessDefinition>): TykPolicy {
  return {
    id,
    name: id,
    org_id: orgId,
    active: true,
    rate: limits.rate,
    per: limits.per,
    quota_max: limits.quotaMax,
    quota_renewal_rate: limits.quotaRenewalRate,
    throttle_interval: -1,
    throttle_retry_limit: -1,
    max_query_depth: -1,
    key_expires_in: 0,
    access_rights: accessRights,
    // Lets an operator find (and clean up) what this tool generated among hand-written policies.
    tags: ['workload-token-broker'],
  };
}

/**
 * One Tyk policy per policy ID, each granting the whole API. The IDs come from the broker configuration
 * (see grantablePolicies) and keep their order. Pure.
 */
export function buildTykPolicies(policyIds: readonly string[], api: TykPolicyApi, limits: TykPolicyLimits = DEFAULT_POLICY_LIMITS): TykPolicy[] {
  return policyIds.map((id) =>
    policyOf(id, api.orgId, limits, { [api.apiId]: { api_id: api.apiId, api_name: api.apiName, versions: ['Default'], allowed_urls: [] } }),
  );
}

/**
 * The Tyk policy for one described policy: every API of the spec in `access_rights`, each route as an
 * `allowed_urls` entry (`^` + path, see tyk-route-pattern.ts), its own limits over `fallback`. Pure.
 */
export function buildDescribedTykPolicy(id: string, spec: TykPolicySpec, orgId: string, fallback: TykPolicyLimits = DEFAULT_POLICY_LIMITS): TykPolicy {
  const limits: TykPolicyLimits = {
    rate: spec.rate ?? fallback.rate,
    per: spec.per ?? fallback.per,
    quotaMax: spec.quotaMax ?? fallback.quotaMax,
    quotaRenewalRate: spec.quotaRenewalRate ?? fallback.quotaRenewalRate,
  };
  const accessRights: Record<string, TykAccessDefinition> = {};
  for (const api of spec.apis) {
    accessRights[api.apiId] = {
      api_id: api.apiId,
      api_name: api.apiName ?? api.apiId,
      versions: ['Default'],
      allowed_urls: (api.routes ?? []).map((route) => ({ url: tykAllowedUrl(route.path), methods: [...route.methods] })),
    };
  }
  return policyOf(id, orgId, limits, accessRights);
}

/** The `policies.policy_record_name` format: one JSON object mapping each policy ID to its policy. Pure. */
export function tykPolicyRecord(policies: readonly TykPolicy[]): Record<string, TykPolicy> {
  return Object.fromEntries(policies.map((policy) => [policy.id, policy]));
}
