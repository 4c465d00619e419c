import type { REDIS_UNAVAILABLE } from '../cache/redis-connection.js';
import type { Deny } from './deny.js';

/** What a read of the shared denies found: the denies, and the fields of entries that are not denies. */
export interface SharedDenies {
  readonly denies: readonly Deny[];
  readonly malformed: readonly { readonly field: string; readonly problem: string }[];
}

export type Unavailable = typeof REDIS_UNAVAILABLE;
export type AddResult = 'added' | 'exists' | 'too_many' | Unavailable;

/**
 * Where denies added at run time live: Redis, shared by every replica (RedisDenyStore), or this process's memory
 * for a single replica without Redis (MemoryDenyStore, lost on restart).
 */
export interface DenyStore {
  read(): Promise<SharedDenies | Unavailable>;
  add(deny: Deny, nowMs: number): Promise<AddResult>;
  /** The removed deny, or undefined when there was none by that id. */
  remove(id: string): Promise<Deny | undefined | Unavailable>;
}
