import type { Deny } from './deny.js';
import { DenySnapshot } from './deny-snapshot.js';

export interface DenyListEvents {
  /** A shared deny appeared in, or went from, what this replica enforces. */
  onChange?(change: 'added' | 'removed', deny: Deny): void;
  /** After every replacement of the snapshot. */
  onSnapshot?(snapshot: DenySnapshot): void;
}

/**
 * What one replica enforces: the static denies of its configuration, and the shared denies last read from Redis.
 * The exchange reads `snapshot` once per request (an in-memory lookup); the Redis side replaces the shared part.
 * When Redis cannot be read, the last shared list read stays in force (fail closed on known denies); expired
 * denies stop refusing by the clock alone.
 */
export class DenyList {
  private current: DenySnapshot;

  constructor(
    staticDenies: readonly Deny[],
    private readonly events: DenyListEvents = {},
  ) {
    this.current = new DenySnapshot(staticDenies, []);
    events.onSnapshot?.(this.current);
  }

  get snapshot(): DenySnapshot {
    return this.current;
  }

  /** Puts a reloaded configuration's static denies in force (the shared ones are kept). */
  replaceStatic(staticDenies: readonly Deny[]): void {
    this.current = new DenySnapshot(staticDenies, this.current.sharedDenies);
    this.events.onSnapshot?.(this.current);
  }

  /** Puts the shared list just read in force, and reports what changed since the previous one. */
  replaceShared(shared: readonly Deny[]): void {
    const before = new Map(this.current.sharedDenies.map((deny) => [deny.id, deny]));
    const after = new Map(shared.map((deny) => [deny.id, deny]));
    this.current = new DenySnapshot(this.current.staticDenies, shared);
    for (const [id, deny] of after) if (!before.has(id)) this.events.onChange?.('added', deny);
    for (const [id, deny] of before) if (!after.has(id)) this.events.onChange?.('removed', deny);
    this.events.onSnapshot?.(this.current);
  }
}
