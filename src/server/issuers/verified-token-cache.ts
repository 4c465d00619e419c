import { BoundedLru } from '../cache/bounded-lru.js';
import type { Claims } from '../identity/workload-identity.js';
import type { TrustedIssuer } from './trusted-issuers.js';

/**
 * What signature verification and claim parsing established about one subject token: everything but its timing,
 * which depends on the clock and is checked again on every use.
 */
export interface VerifiedSignature {
  readonly issuer: TrustedIssuer;
  readonly claims: Claims;
  readonly algorithm: string;
  readonly kid: string | undefined;
  /** The issuer key set's generation the signature was verified against; another generation makes it a miss. */
  readonly keysGeneration: number;
}

/**
 * Default bound. An entry is about 1.6 KB (the parsed claims); 4,096 steps re-presenting their tokens at the same
 * time is a large Argo installation, and past it the least recently used simply verify again. 10,000 entries cost
 * ~10 MB more heap, which the memory budget (150 MB RSS at 100,000 identities, see README) does not have.
 */
export const VERIFIED_TOKEN_CACHE_ENTRIES = 4096;

/**
 * Remembers verified subject tokens by their SHA-256, so a re-presented token skips the signature check and the
 * claim parsing (a projected token is re-presented for every call a step makes). A bounded LRU, like the minted
 * token cache. It never answers for a token alone: the caller re-checks `exp`, `nbf` and `iat` with the clock skew
 * on every hit, and cluster checks (pod binding) run after it as for any token. An entry verified against an
 * issuer key set that has since changed is dropped on read, and `purge` drops an issuer's entries at once.
 */
export class VerifiedTokenCache {
  private readonly entries: BoundedLru<string, VerifiedSignature>;

  constructor(maxEntries: number = VERIFIED_TOKEN_CACHE_ENTRIES) {
    this.entries = new BoundedLru(maxEntries);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The verification of the token with this SHA-256, if it is still valid for its issuer's current key set. */
  get(sha256: string): VerifiedSignature | undefined {
    const entry = this.entries.get(sha256);
    if (entry === undefined || entry.issuer.keys.generation === entry.keysGeneration) return entry;
    this.entries.delete(sha256);
    return undefined;
  }

  set(sha256: string, entry: VerifiedSignature): void {
    this.entries.set(sha256, entry);
  }

  /** Drops every entry of one issuer (its key set changed), or of all issuers. */
  purge(issuerName?: string): void {
    if (issuerName === undefined) this.entries.clear();
    else this.entries.deleteWhere((entry) => entry.issuer.config.name === issuerName);
  }
}
