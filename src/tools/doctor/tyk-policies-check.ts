import { check, type DoctorCheck } from './doctor-check.js';
import type { TykPolicySummary } from './tyk-api-checks.js';

/**
 * Reads GET /tyk/policies: an array of policies (a map id -> policy is accepted too), each with `id`, `org_id` and
 * `access_rights`. Throws when the answer is neither. Pure.
 */
export function tykPolicySummaries(answer: unknown): TykPolicySummary[] {
  const list = Array.isArray(answer) ? answer : answer !== null && typeof answer === 'object' ? Object.values(answer) : undefined;
  if (list === undefined) throw new Error('the policy list is not a JSON array');
  return list.flatMap((entry: unknown) => {
    if (entry === null || typeof entry !== 'object') return [];
    const policy = entry as Record<string, unknown>;
    // Policies loaded from files are keyed by `id`; Dashboard-backed ones may carry `_id` only.
    const id = typeof policy.id === 'string' && policy.id !== '' ? policy.id : typeof policy._id === 'string' ? policy._id : undefined;
    if (id === undefined) return [];
    const rights = policy.access_rights !== null && typeof policy.access_rights === 'object' ? Object.keys(policy.access_rights) : [];
    return [{ id, orgId: typeof policy.org_id === 'string' ? policy.org_id : '', apiIds: rights }];
  });
}

/**
 * Judges Tyk's policies against what the rules can grant: a token naming a policy Tyk lacks is refused with
 * "key not authorized: no matching policy". Templated policies are only known per request and are listed as a
 * warning. Pure.
 */
export function assessTykPolicies(grantable: readonly string[], templated: readonly string[], policies: readonly TykPolicySummary[]): DoctorCheck[] {
  const name = 'tyk-policies';
  const known = new Set(policies.map((policy) => policy.id));
  const missing = grantable.filter((id) => !known.has(id));
  const results: DoctorCheck[] = [];
  if (missing.length > 0) {
    results.push(
      check(
        'FAIL',
        name,
        `policies the rules can grant are missing in Tyk: ${missing.join(', ')} (${missing.length} of ${grantable.length}); tokens naming them are refused ("no matching policy")`,
        'create them: token-broker tyk policies --config FILE --api-id ID --out DIR, into Tyk\'s policies.policy_path, then reload Tyk',
      ),
    );
  } else {
    results.push(check('OK', name, `all ${grantable.length} policies the rules can grant exist in Tyk (${policies.length} in Tyk)`));
  }
  if (templated.length > 0) {
    results.push(check('WARN', name, `templated policies are resolved per request and were not checked: ${templated.join(', ')}`, 'make sure every value they can produce exists in Tyk'));
  }
  return results;
}
