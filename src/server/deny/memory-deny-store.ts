import { MAX_DENIES, type Deny } from './deny.js';
import { denyInForce } from './deny-match.js';
import type { AddResult, DenyStore, SharedDenies } from './deny-store.js';

/** Denies added at run time to a single replica without Redis (through its admin endpoint); lost on restart. */
export class MemoryDenyStore implements DenyStore {
  private readonly entries = new Map<string, Deny>();

  async read(): Promise<SharedDenies> {
    return { denies: [...this.entries.values()], malformed: [] };
  }

  async add(deny: Deny, nowMs: number): Promise<AddResult> {
    for (const [id, entry] of this.entries) if (!denyInForce(entry, nowMs)) this.entries.delete(id);
    const existing = this.entries.get(deny.id);
    if (existing !== undefined) return 'exists';
    if (this.entries.size >= MAX_DENIES) return 'too_many';
    this.entries.set(deny.id, deny);
    return 'added';
  }

  async remove(id: string): Promise<Deny | undefined> {
    const existing = this.entries.get(id);
    this.entries.delete(id);
    return existing;
  }
}
