import type { Deny } from './deny.js';

/** The audit record of a deny added or removed: what, by whom, until when, and what it did to issued tokens. */
export interface DenyAuditRecord {
  readonly event: 'deny_added' | 'deny_removed';
  readonly denyId: string;
  readonly match: Deny['match'];
  /** RFC 3339; undefined for a deny in force until removed. */
  readonly until: string | undefined;
  readonly reason: string;
  readonly createdBy: string;
  /** Who made this change (the CLI's --by, the admin endpoint's caller). */
  readonly actor: string;
  /** RFC 3339 time of the change. */
  readonly at: string;
  /** tyk-key mode: how many issued Tyk keys the deny deleted, and how many deletions failed. */
  readonly tykKeysDeleted?: number;
  readonly tykKeysFailed?: number;
}

/** Builds the audit record of a deny change. Pure. */
export function denyAuditRecordOf(
  event: DenyAuditRecord['event'],
  deny: Deny,
  context: { readonly actor: string; readonly nowMs: number; readonly tykKeysDeleted?: number; readonly tykKeysFailed?: number },
): DenyAuditRecord {
  return {
    event,
    denyId: deny.id,
    match: deny.match,
    until: deny.until === undefined ? undefined : new Date(deny.until).toISOString(),
    reason: deny.reason,
    createdBy: deny.createdBy,
    actor: context.actor,
    at: new Date(context.nowMs).toISOString(),
    ...(context.tykKeysDeleted !== undefined && { tykKeysDeleted: context.tykKeysDeleted }),
    ...(context.tykKeysFailed !== undefined && { tykKeysFailed: context.tykKeysFailed }),
  };
}
