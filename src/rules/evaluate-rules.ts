import { resolveJsonPointer } from './json-pointer.js';
import type { CompiledRule, CompiledRules } from './compiled-rules.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';

/** Why one rule did or did not match: for logs, audit and the explain tool, never for the response. */
export interface RuleVerdict {
  readonly rule: string;
  readonly matched: boolean;
  /** The first condition that failed; absent when the rule matched. */
  readonly reason?: string;
}

export interface PolicyDecision {
  /** Union of the matching rules' policies, de-duplicated, in rule order. */
  readonly policies: readonly string[];
  /** Smallest TTL among matching rules, capped by the maximum; the default when no matching rule sets one. */
  readonly ttlSeconds: number;
  readonly matchedRules: readonly string[];
  readonly verdicts: readonly RuleVerdict[];
}

function firstMismatch(rule: CompiledRule, identity: WorkloadIdentity): string | undefined {
  if (rule.issuers && !rule.issuers.has(identity.issuerName)) {
    return `issuer "${identity.issuerName}" is not in [${[...rule.issuers].join(', ')}]`;
  }
  if (rule.namespaces) {
    if (identity.namespace === undefined) return 'the token carries no namespace';
    if (!rule.namespaces(identity.namespace)) {
      return `namespace "${identity.namespace}" matches none of [${rule.source.match.namespaces?.join(', ')}]`;
    }
  }
  if (rule.serviceAccounts) {
    if (identity.serviceAccount === undefined) return 'the token carries no service account';
    if (!rule.serviceAccounts(identity.serviceAccount)) {
      return `service account "${identity.serviceAccount}" matches none of [${rule.source.match.serviceAccounts?.join(', ')}]`;
    }
  }
  for (const condition of rule.claims) {
    const value = resolveJsonPointer(identity.claims, condition.tokens);
    if (typeof value !== 'string') return `claim ${condition.pointer} is ${value === undefined ? 'absent' : 'not a string'}`;
    if (!condition.matches(value)) return `claim ${condition.pointer} = "${value}" does not match "${condition.pattern}"`;
  }
  return undefined;
}

/**
 * Applies every rule to an identity. Each matching rule contributes its policies; the token lifetime is
 * the smallest any matching rule allows. Pure: same identity and rules, same decision.
 */
export function evaluateRules(
  rules: CompiledRules,
  identity: WorkloadIdentity,
  lifetimes: { readonly defaultTtlSeconds: number; readonly maxTtlSeconds: number },
): PolicyDecision {
  const policies = new Set<string>();
  const matchedRules: string[] = [];
  const verdicts: RuleVerdict[] = [];
  let ttl: number | undefined;
  for (const rule of rules.rules) {
    const reason = firstMismatch(rule, identity);
    if (reason !== undefined) {
      verdicts.push({ rule: rule.name, matched: false, reason });
      continue;
    }
    verdicts.push({ rule: rule.name, matched: true });
    matchedRules.push(rule.name);
    for (const policy of rule.policies) policies.add(policy);
    if (rule.ttlSeconds !== undefined) ttl = Math.min(ttl ?? Infinity, rule.ttlSeconds);
  }
  return {
    policies: [...policies],
    ttlSeconds: Math.min(ttl ?? lifetimes.defaultTtlSeconds, lifetimes.maxTtlSeconds),
    matchedRules,
    verdicts,
  };
}
