import { BrokerError, invalidRequest, invalidTarget } from '../errors.js';
import { evaluateRules, type PolicyDecision } from './evaluate-rules.js';
import type { CompiledRules } from './compiled-rules.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TokensConfig } from '../config/schema.js';
import type { ResourceIndicator } from './resource-indicator.js';
import { narrowToResource, type ResourceTargets } from './resource-targets.js';

/** What the minted token grants and to whom: everything that determines its claims except time and jti. */
export interface Grant {
  readonly identity: WorkloadIdentity;
  readonly policies: readonly string[];
  readonly audience: string;
  readonly ttlSeconds: number;
}

/** What the caller asked for on top of its identity: RFC 8693 `scope` and `audience`, RFC 8707 `resource`. */
export interface GrantRequest {
  /** Requested policies; undefined: everything granted. */
  readonly scope?: readonly string[] | undefined;
  /** The API the token is for; undefined: every API the policies open. Narrows after `scope` (both: the intersection). */
  readonly resource?: ResourceIndicator | undefined;
  /** Requested audience; undefined: tokens.audience. */
  readonly audience?: string | undefined;
}

/**
 * The decision for one verified identity: the rules' evaluation (kept for logs, audit and explain, granted or not)
 * and either the grant or the refusal POST /token answers with.
 */
export type GrantDecision =
  | { readonly evaluation: PolicyDecision; readonly granted: true; readonly grant: Grant }
  | { readonly evaluation: PolicyDecision; readonly granted: false; readonly refusal: BrokerError };

/**
 * The policies of the token: what the rules grant, or, when the request names a `scope`, exactly those policies,
 * each of which must be granted or requestable (RFC 8693 `scope`).
 */
export function selectPolicies(evaluation: PolicyDecision, scope: readonly string[] | undefined): readonly string[] {
  if (scope === undefined) {
    if (evaluation.policies.length === 0) {
      throw invalidRequest('no_matching_rule', 'No policy is granted to this workload identity.', { detail: 'no policy granted; see verdicts' });
    }
    return evaluation.policies;
  }
  const available = new Set([...evaluation.policies, ...evaluation.requestable]);
  if (available.size === 0) {
    throw invalidRequest('no_matching_rule', 'No policy is granted to this workload identity.', { detail: 'no policy granted; see verdicts' });
  }
  const refused = scope.filter((policy) => !available.has(policy));
  if (refused.length > 0) {
    throw invalidTarget('scope_not_granted', `The requested scope includes policies this workload is not granted: ${refused.join(' ').slice(0, 300)}.`);
  }
  const requested = new Set(scope);
  return [...evaluation.policies, ...evaluation.requestable].filter((policy) => requested.has(policy));
}

/**
 * The one decision of an exchange, in its order: apply every rule, narrow to the requested scope, then to the
 * policies opening the requested resource's API, check the audience. POST /token, POST /v1/explain,
 * `token-broker explain` and `test-rules` all call this, so an explanation cannot disagree with the exchange.
 * Without `targets` (no `apis` configured) a resource is refused, never ignored. Time is not an input: the
 * subject token's time checks happen when it is verified, before an identity exists. Pure.
 */
export function decideGrant(
  rules: CompiledRules,
  identity: WorkloadIdentity,
  request: GrantRequest,
  tokens: TokensConfig,
  targets?: ResourceTargets,
): GrantDecision {
  const evaluation = evaluateRules(rules, identity, tokens);
  try {
    const selected = selectPolicies(evaluation, request.scope);
    const policies = request.resource === undefined ? selected : narrowToResource(selected, request.resource, targets);
    const audience = request.audience ?? tokens.audience;
    // A small list (one entry unless configured): includes() beats building a Set per exchange.
    const allowedAudiences = tokens.allowedAudiences ?? [tokens.audience];
    if (!allowedAudiences.includes(audience)) {
      throw invalidTarget('audience_not_allowed', `The broker does not issue tokens for audience "${audience.slice(0, 120)}".`);
    }
    return { evaluation, granted: true, grant: { identity, policies, audience, ttlSeconds: evaluation.ttlSeconds } };
  } catch (error) {
    // A refusal is an answer; anything else is a bug and must not look like one.
    if (!(error instanceof BrokerError)) throw error;
    return { evaluation, granted: false, refusal: error };
  }
}
