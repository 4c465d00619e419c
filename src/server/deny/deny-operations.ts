import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { REDIS_UNAVAILABLE } from '../cache/redis-connection.js';
import type { RedisAuditStream } from '../observability/audit-stream.js';
import { denyFromRequest, type Deny, type DenyProblem, type DenyRequest } from './deny.js';
import { denyInForce } from './deny-match.js';
import { denyAuditRecordOf, type DenyAuditRecord } from './deny-audit-record.js';
import type { DenyStore } from './deny-store.js';

/** What deleting a deny's issued Tyk keys did (tyk-key mode). */
export interface TykKeyRevocation {
  readonly deleted: number;
  readonly failed: number;
}

/** Everything that adds, lists or removes denies needs: the CLI and the admin endpoint build one each. */
export interface DenyOperations {
  readonly store: DenyStore;
  readonly logger: Logger;
  readonly auditStream?: RedisAuditStream | undefined;
  readonly now: () => number;
  readonly newId?: () => string;
  /** Takes the deny's issued tokens out of the cache and, in tyk-key mode, deletes their keys from the Gateway. */
  readonly revokeIssued?: ((deny: Deny) => Promise<TykKeyRevocation | undefined>) | undefined;
  /** Called after a change, so the replica that made it enforces it at once (others learn by pub/sub). */
  readonly afterChange?: (() => Promise<void>) | undefined;
}

export type AddDenyOutcome =
  | { readonly status: 'added'; readonly deny: Deny; readonly tykKeys?: TykKeyRevocation }
  | { readonly status: 'invalid'; readonly problems: readonly DenyProblem[] }
  | { readonly status: 'too_many' | 'unavailable' };

export type RemoveDenyOutcome = { readonly status: 'removed'; readonly deny: Deny } | { readonly status: 'not_found' | 'unavailable' };

/** One audit record: a log line (audit: true, the record of truth) and, when configured, the Redis audit stream. */
async function audit(ops: DenyOperations, record: DenyAuditRecord): Promise<void> {
  ops.logger.info({ audit: true, ...record }, record.event === 'deny_added' ? 'deny added' : 'deny removed');
  if (ops.auditStream !== undefined && !(await ops.auditStream.append(record))) {
    ops.logger.warn({ denyId: record.denyId }, 'deny audit record not streamed to Redis (it is in the log)');
  }
}

/** Adds a deny: validated, stored, announced, audited; in tyk-key mode the matching issued keys are deleted. */
export async function addDeny(ops: DenyOperations, request: DenyRequest, actor: string): Promise<AddDenyOutcome> {
  const nowMs = ops.now();
  const parsed = denyFromRequest(request, { id: (ops.newId ?? randomUUID)(), now: nowMs, createdBy: actor });
  if (!parsed.ok) return { status: 'invalid', problems: parsed.problems };
  const stored = await ops.store.add(parsed.deny, nowMs);
  if (stored === REDIS_UNAVAILABLE) return { status: 'unavailable' };
  if (stored === 'too_many') return { status: 'too_many' };
  // A generated id never collides; 'exists' can only be a retry of the same id.
  await ops.afterChange?.();
  const tykKeys = ops.revokeIssued === undefined ? undefined : await ops.revokeIssued(parsed.deny);
  await audit(ops, denyAuditRecordOf('deny_added', parsed.deny, { actor, nowMs, ...(tykKeys !== undefined && { tykKeysDeleted: tykKeys.deleted, tykKeysFailed: tykKeys.failed }) }));
  return { status: 'added', deny: parsed.deny, ...(tykKeys !== undefined && { tykKeys }) };
}

/** Removes a deny by id, announced and audited. */
export async function removeDeny(ops: DenyOperations, id: string, actor: string): Promise<RemoveDenyOutcome> {
  const removed = await ops.store.remove(id);
  if (removed === REDIS_UNAVAILABLE) return { status: 'unavailable' };
  if (removed === undefined) return { status: 'not_found' };
  await ops.afterChange?.();
  await audit(ops, denyAuditRecordOf('deny_removed', removed, { actor, nowMs: ops.now() }));
  return { status: 'removed', deny: removed };
}

/** The stored denies still in force, oldest first. */
export async function listDenies(ops: DenyOperations): Promise<readonly Deny[] | 'unavailable'> {
  const read = await ops.store.read();
  if (read === REDIS_UNAVAILABLE) return 'unavailable';
  const nowMs = ops.now();
  return read.denies.filter((deny) => denyInForce(deny, nowMs)).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}
