import { CACHE_MISS, type CacheLookup, type CachedToken, type TokenCache } from './token-cache.js';

interface Entry {
  readonly value: CachedToken;
  readonly storedUntil: number;
}

/**
 * A bounded in-process LRU for a single instance (the embedded default). A Map keeps insertion order, so
 * re-inserting on read makes the first key the least recently used.
 */
export class MemoryTokenCache implements TokenCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  async get(key: string): Promise<CacheLookup> {
    const entry = this.entries.get(key);
    if (entry === undefined) return CACHE_MISS;
    this.entries.delete(key);
    if (entry.storedUntil <= this.now()) return CACHE_MISS;
    this.entries.set(key, entry);
    return { status: 'hit', value: entry.value };
  }

  async set(key: string, value: CachedToken, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, storedUntil: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
