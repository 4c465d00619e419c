/** A minted token as cached: the token and the second it expires. */
export interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
  readonly jti: string;
  readonly policies: readonly string[];
}

/**
 * The cache of minted tokens, shared by replicas when backed by Redis. Adapters never throw to the
 * exchange: a failing cache reads as a miss and a failed write is dropped.
 */
export interface TokenCache {
  get(key: string): Promise<CachedToken | undefined>;
  /** Stores a token for `ttlSeconds` (the caller subtracts the refresh margin). */
  set(key: string, value: CachedToken, ttlSeconds: number): Promise<void>;
  close(): Promise<void>;
}
