/**
 * The policy IDs a configuration can grant, as Tyk must know them: every policy named by a rule, once, in
 * rule order. A policy containing `{` is a template (such as "{namespace.labels.team}-read") whose value is
 * only known per request, so it cannot be listed statically; it is reported apart so the caller can warn.
 */
export interface GrantablePolicies {
  /** Literal policy IDs, first occurrence first: each must exist in Tyk with the API in its access rights. */
  readonly grantable: readonly string[];
  /** Templated policies, first occurrence first: not generated, not mapped. */
  readonly templated: readonly string[];
}

/** Collects the union of `rules[].policies` and `rules[].requestable`, splitting literal IDs from templates. Pure. */
export function grantablePolicies(
  rules: readonly { readonly policies?: readonly string[] | undefined; readonly requestable?: readonly string[] | undefined }[],
): GrantablePolicies {
  const grantable: string[] = [];
  const templated: string[] = [];
  const seen = new Set<string>();
  for (const rule of rules) {
    for (const policy of [...(rule.policies ?? []), ...(rule.requestable ?? [])]) {
      if (seen.has(policy)) continue;
      seen.add(policy);
      (policy.includes('{') ? templated : grantable).push(policy);
    }
  }
  return { grantable, templated };
}
