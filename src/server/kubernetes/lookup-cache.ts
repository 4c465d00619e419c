import { BoundedLru } from '../cache/bounded-lru.js';

interface Answer<T> {
  /** undefined is an answer too: the API said 404. */
  readonly value: T | undefined;
  readonly expiresAt: number;
}

/**
 * Kubernetes answers (found or 404) reused for a lifetime on the injected clock, at most `maxEntries` of them (the
 * least recently used go first), so memory stays bounded under churn; concurrent loads of one key share one request.
 * Failures are never stored: they reject every waiter, and the next call asks again. No I/O of its own.
 */
export class LookupCache<T> {
  private readonly answers: BoundedLru<string, Answer<T>>;
  private readonly inflight = new Map<string, Promise<T | undefined>>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number,
    maxEntries: number,
  ) {
    this.answers = new BoundedLru(maxEntries);
  }

  get(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const answer = this.answers.get(key);
    if (answer !== undefined) {
      if (this.now() < answer.expiresAt) return Promise.resolve(answer.value);
      this.answers.delete(key);
    }
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      const loading: Promise<T | undefined> = load()
        .then((value) => {
          // A clear() while loading discards the answer: it may come from a source being closed.
          if (this.inflight.get(key) === loading && this.lifetimeMs > 0) {
            this.answers.set(key, { value, expiresAt: this.now() + this.lifetimeMs });
          }
          return value;
        })
        .finally(() => {
          if (this.inflight.get(key) === loading) this.inflight.delete(key);
        });
      pending = loading;
      this.inflight.set(key, loading);
    }
    return pending;
  }

  get size(): number {
    return this.answers.size;
  }

  clear(): void {
    this.answers.clear();
    this.inflight.clear();
  }
}
