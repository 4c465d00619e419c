import type { Deny, DenyFacet } from './deny.js';

/** The facets of one exchange's identity a deny is judged against (the issuer is the configured issuer name). */
export type DenySubject = Partial<Readonly<Record<DenyFacet, string>>>;

/** Whether the deny is still in force at `nowMs`. */
export function denyInForce(deny: Deny, nowMs: number): boolean {
  return deny.until === undefined || nowMs < deny.until;
}

/**
 * Whether `deny` refuses `subject` at `nowMs`: it is in force and every facet it names equals the subject's (exact
 * string comparison; a facet the subject lacks does not match). Pure.
 */
export function denyMatches(deny: Deny, subject: DenySubject, nowMs: number): boolean {
  if (!denyInForce(deny, nowMs)) return false;
  let named = 0;
  for (const facet in deny.match) {
    const wanted = deny.match[facet as DenyFacet];
    if (wanted === undefined) continue;
    named++;
    if (subject[facet as DenyFacet] !== wanted) return false;
  }
  // A deny naming nothing is malformed; it never refuses (parsing refuses it too).
  return named > 0;
}
