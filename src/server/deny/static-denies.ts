import type { StaticDenyConfig } from '../config/schema.js';
import { DENY_FACETS, sanitizeReason, type Deny, type DenyMatch } from './deny.js';

/** The configuration's static denies as denies (validated by the schema already). Pure. */
export function staticDeniesOf(denies: readonly StaticDenyConfig[], loadedAt: number): Deny[] {
  return denies.map((entry) => {
    const match: Partial<Record<(typeof DENY_FACETS)[number], string>> = {};
    for (const facet of DENY_FACETS) {
      const value = entry[facet];
      if (value !== undefined) match[facet] = value;
    }
    return {
      id: entry.id,
      match: match as DenyMatch,
      until: entry.until === undefined ? undefined : Date.parse(entry.until),
      reason: sanitizeReason(entry.reason) || 'denied by the broker configuration',
      createdAt: loadedAt,
      createdBy: 'config',
    };
  });
}
