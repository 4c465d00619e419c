/** A minted token as cached: the token and the second it expires. */
export interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
  readonly jti: string;
  readonly policies: readonly string[];
  /**
   * Who holds it (tyk-key mode only): the identity facets a deny is judged on, so that a deny added later can find
   * and delete the holder's issued Tyk keys. JWT mode records none (a JWT cannot be revoked at Tyk).
   */
  readonly holder?: TokenHolder;
}

/** The identity facets of a cached token's holder; see DenySubject. */
export interface TokenHolder {
  readonly issuer: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly workflow?: string;
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
  /**
   * Removes every cached token that `matches` and returns them, or undefined when the cache could not be read
   * completely. For the kill switch only (a full scan): never on an exchange's path.
   */
  takeWhere(matches: (token: CachedToken) => boolean): Promise<CachedToken[] | undefined>;
  close(): Promise<void>;
}
