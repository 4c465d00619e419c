/** A minted token as cached: the token and the second it expires. */
export interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
  readonly jti: string;
  readonly policies: readonly string[];
}

/** What a cache read found. `error`: the cache could not be asked; the exchange carries on without it. */
export type CacheLookup =
  | { readonly status: 'hit'; readonly value: CachedToken }
  | { readonly status: 'miss' }
  | { readonly status: 'error' };

export const CACHE_MISS: CacheLookup = Object.freeze({ status: 'miss' });
export const CACHE_ERROR: CacheLookup = Object.freeze({ status: 'error' });

/**
 * The cache of minted tokens, shared by replicas when backed by Redis. Adapters never throw to the
 * exchange: a failing read is an `error` lookup and a failed write is dropped.
 */
export interface TokenCache {
  get(key: string): Promise<CacheLookup>;
  /** Stores a token for `ttlSeconds` (the caller subtracts the refresh margin). */
  set(key: string, value: CachedToken, ttlSeconds: number): Promise<void>;
  close(): Promise<void>;
}
