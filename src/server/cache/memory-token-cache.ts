import { BoundedLru } from './bounded-lru.js';
import { CACHE_MISS, type CacheLookup, type CachedToken, type TokenCache } from './token-cache.js';

interface Entry {
  readonly value: CachedToken;
  readonly storedUntil: number;
}

/** A bounded in-process LRU of minted tokens for a single instance (the embedded default). */
export class MemoryTokenCache implements TokenCache {
  private readonly entries: BoundedLru<string, Entry>;

  constructor(
    maxEntries: number,
    private readonly now: () => number,
  ) {
    this.entries = new BoundedLru(maxEntries);
  }

  get size(): number {
    return this.entries.size;
  }

  async get(key: string): Promise<CacheLookup> {
    const entry = this.entries.get(key);
    if (entry === undefined) return CACHE_MISS;
    if (entry.storedUntil <= this.now()) {
      this.entries.delete(key);
      return CACHE_MISS;
    }
    return { status: 'hit', value: entry.value };
  }

  async set(key: string, value: CachedToken, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0) return;
    this.entries.set(key, { value, storedUntil: this.now() + ttlSeconds * 1000 });
  }

  async takeWhere(matches: (token: CachedToken) => boolean): Promise<CachedToken[]> {
    const taken: CachedToken[] = [];
    this.entries.deleteWhere((entry) => {
      const hit = matches(entry.value);
      if (hit) taken.push(entry.value);
      return hit;
    });
    return taken;
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
