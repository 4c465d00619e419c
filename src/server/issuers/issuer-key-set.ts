import { importJWK, type CryptoKey, type JWK } from 'jose';
import { readFile } from 'node:fs/promises';
import { invalidRequest, temporarilyUnavailable } from '../errors.js';
import { parseJwks, selectKeys } from './jwks-selection.js';
import type { IssuerFetch } from './issuer-fetch.js';

export type VerificationKey = CryptoKey | Uint8Array;

/** Where an issuer's public keys come from. */
export interface IssuerKeySet {
  /**
   * Resolves every key that may have signed a token with this header (one, unless the issuer publishes several
   * under one `kid`, or the token has none), refreshing once on an unknown `kid` (subject to the cool-down).
   */
  getKeys(header: { alg: string; kid?: string | undefined }): Promise<readonly VerificationKey[]>;
  /** Loads the keys now; rejects when they cannot be loaded. */
  refresh(): Promise<void>;
  /** True once a key set has been loaded; stays true while a stale set is served. */
  readonly loaded: boolean;
  /** Milliseconds since the epoch of the last successful load, or undefined. */
  readonly lastSuccessAt: number | undefined;
  /**
   * Changes whenever a load brings keys that differ from the ones before (a rotation, a removed key), and only
   * then: a verification remembered under another generation no longer counts.
   */
  readonly generation: number;
}

export interface KeySetEvents {
  onRefresh?(result: 'success' | 'error', error?: unknown): void;
  /** After a load replaced the keys with different ones (`generation` changed). */
  onKeysChanged?(): void;
}

interface LoadedKeys {
  readonly keys: readonly JWK[];
  readonly imported: Map<string, Promise<VerificationKey>>;
}

abstract class BaseKeySet implements IssuerKeySet {
  protected current: LoadedKeys | undefined;
  protected successAt: number | undefined;
  private keysGeneration = 0;
  /** The JSON of the installed keys, to tell a changed key set from a refetch of the same one. */
  private installedJson: string | undefined;

  constructor(protected readonly keySetEvents?: KeySetEvents) {}

  get loaded(): boolean {
    return this.current !== undefined;
  }

  get lastSuccessAt(): number | undefined {
    return this.successAt;
  }

  get generation(): number {
    return this.keysGeneration;
  }

  abstract refresh(): Promise<void>;

  abstract getKeys(header: { alg: string; kid?: string | undefined }): Promise<readonly VerificationKey[]>;

  /** The first candidate of getKeys: for callers that need one key of a known `kid`. */
  async getKey(header: { alg: string; kid?: string | undefined }): Promise<VerificationKey> {
    const [first] = await this.getKeys(header);
    if (first === undefined) throw unknownKid(header.kid);
    return first;
  }

  protected install(keys: readonly JWK[], at: number): void {
    this.current = { keys, imported: new Map() };
    this.successAt = at;
    const json = JSON.stringify(keys);
    if (json !== this.installedJson) {
      this.installedJson = json;
      this.keysGeneration += 1;
      this.keySetEvents?.onKeysChanged?.();
    }
  }

  /**
   * Returns the candidate keys, or why there are none. Imported keys are memoized per loaded key set, by position
   * (two keys may share a `kid`). A candidate the runtime cannot import is skipped; when none can be, the issuer
   * publishes nothing usable for this token, which is its fault, not the caller's.
   */
  protected lookup(header: { alg: string; kid?: string | undefined }): Promise<readonly VerificationKey[]> | 'unknown_kid' {
    const current = this.current;
    if (current === undefined) return 'unknown_kid';
    const selection = selectKeys(current.keys, header);
    if (!selection.found) {
      if (selection.why === 'unknown_kid') return 'unknown_kid';
      throw invalidRequest('unsupported_algorithm', `The issuer's key "${header.kid}" cannot verify ${header.alg} signatures.`);
    }
    const imports = selection.jwks.map((jwk) => this.imported(current, jwk, header.alg));
    if (imports.length === 1) return (imports[0] as Promise<VerificationKey>).then((key) => [key]);
    return Promise.allSettled(imports).then((results) => {
      const usable = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      if (usable.length > 0) return usable;
      throw (results[0] as PromiseRejectedResult).reason;
    });
  }

  private imported(current: LoadedKeys, jwk: JWK, alg: string): Promise<VerificationKey> {
    const memoKey = `${current.keys.indexOf(jwk)}\u0000${alg}`;
    let key = current.imported.get(memoKey);
    if (key === undefined) {
      key = (importJWK({ ...jwk, ext: true }, alg) as Promise<VerificationKey>).catch((error: unknown) => {
        // The issuer publishes a key this runtime cannot use (malformed, or RSA under 2048 bits): the
        // issuer's fault, not the caller's; forget it so a corrected key set is tried again.
        current.imported.delete(memoKey);
        throw temporarilyUnavailable('issuer_unavailable', 'The issuer publishes a key for this token that the broker cannot use.', {
          detail: `importJWK failed for kid ${jwk.kid ?? '(none)'}: ${error instanceof Error ? error.message : String(error)}`,
        });
      });
      current.imported.set(memoKey, key);
    }
    return key;
  }
}

function unknownKid(kid: string | undefined) {
  return invalidRequest(
    'unknown_kid',
    kid === undefined
      ? 'The subject token has no "kid" and no key of its issuer fits its algorithm.'
      : 'The subject token was signed with a key its issuer does not publish (unknown "kid"). If the cluster rotated its service-account keys, retry shortly.',
    { facts: { kid: kid ?? '' } },
  );
}

export interface RemoteKeySetOptions {
  /** Resolves the JWKS address (discovery may be needed first). */
  readonly resolveJwksUri: () => Promise<string>;
  readonly fetch: IssuerFetch;
  readonly now: () => number;
  /** An unknown kid triggers a refetch at most this often. */
  readonly cooldownMs?: number;
  /** After this, the next request triggers a background refresh; the old keys keep serving meanwhile. */
  readonly maxAgeMs?: number;
  readonly events?: KeySetEvents;
}

const UNKNOWN_KID_UNAVAILABLE = 'The subject token\'s key is not known and the issuer\'s key set cannot be fetched right now; retry shortly.';

/**
 * A remote JWKS with stale-while-revalidate semantics: known keys keep verifying while the issuer is down,
 * an unknown kid refetches at most once per cool-down, and concurrent refreshes collapse into one request.
 */
/** While an issuer's keys have never loaded, requests trigger a fetch at most this often. */
const UNLOADED_RETRY_MS = 2000;

export class RemoteKeySet extends BaseKeySet {
  private inflight: Promise<void> | undefined;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  /** The last fetch failed: until one succeeds, an unknown kid cannot be told apart from a key rotated meanwhile. */
  private lastAttemptFailed = false;
  private readonly cooldownMs: number;
  private readonly maxAgeMs: number;

  constructor(private readonly options: RemoteKeySetOptions) {
    super(options.events);
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.maxAgeMs = options.maxAgeMs ?? 600_000;
  }

  refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.lastAttemptAt = this.options.now();
    try {
      const url = await this.options.resolveJwksUri();
      const response = await this.options.fetch(url, { headers: { accept: 'application/jwk-set+json, application/json' } });
      if (!response.ok) throw new Error(`JWKS answered HTTP ${response.status}`);
      const keys = parseJwks(await response.json());
      this.install(keys, this.options.now());
      this.lastAttemptFailed = false;
      this.options.events?.onRefresh?.('success');
    } catch (error) {
      this.lastAttemptFailed = true;
      this.options.events?.onRefresh?.('error', error);
      throw error;
    }
  }

  async getKeys(header: { alg: string; kid?: string | undefined }): Promise<readonly VerificationKey[]> {
    const now = this.options.now();
    if (this.current === undefined) {
      // Never loaded: retry at most once per back-off so a down issuer is not hammered by every request.
      if (this.inflight === undefined && now - this.lastAttemptAt < UNLOADED_RETRY_MS) {
        throw temporarilyUnavailable('issuer_unavailable', 'The broker cannot load its keys for this issuer yet; retry shortly.', {
          detail: 'JWKS never loaded; last attempt failed moments ago',
        });
      }
      await this.refreshOrUnavailable('The broker cannot load its keys for this issuer yet; retry shortly.');
    } else if (this.successAt !== undefined && now - this.successAt > this.maxAgeMs && now - this.lastAttemptAt >= this.cooldownMs) {
      this.refresh().catch(() => undefined); // stale keys keep serving; failures are counted by the event hook
    }
    const first = this.lookup(header);
    if (first !== 'unknown_kid') return first;
    // A refresh already in flight (max age, or a concurrent request) may bring this kid: wait for it.
    if (this.inflight === undefined && now - this.lastAttemptAt < this.cooldownMs) {
      // Inside the cool-down after a failed fetch the kid may well exist: tell the caller to retry, not that its token is bad.
      if (this.lastAttemptFailed) {
        throw temporarilyUnavailable('issuer_unavailable', UNKNOWN_KID_UNAVAILABLE, { detail: 'unknown kid while the last JWKS fetch failed; next attempt after the cool-down' });
      }
      throw unknownKid(header.kid);
    }
    await this.refreshOrUnavailable(UNKNOWN_KID_UNAVAILABLE);
    const second = this.lookup(header);
    if (second !== 'unknown_kid') return second;
    throw unknownKid(header.kid);
  }

  private async refreshOrUnavailable(description: string): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      throw temporarilyUnavailable('issuer_unavailable', description, {
        detail: `JWKS fetch failed: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }
}

/** A JWKS read from a file, for air-gapped clusters. Re-read by `refresh()` (e.g. on a reload). */
export class FileKeySet extends BaseKeySet {
  constructor(
    private readonly path: string,
    private readonly now: () => number,
    private readonly events?: KeySetEvents,
  ) {
    super(events);
  }

  async refresh(): Promise<void> {
    try {
      this.install(parseJwks(JSON.parse(await readFile(this.path, 'utf8'))), this.now());
      this.events?.onRefresh?.('success');
    } catch (error) {
      this.events?.onRefresh?.('error', error);
      throw error;
    }
  }

  async getKeys(header: { alg: string; kid?: string | undefined }): Promise<readonly VerificationKey[]> {
    if (this.current === undefined) {
      await this.refresh().catch((error: unknown) => {
        throw temporarilyUnavailable('issuer_unavailable', 'The broker cannot load its keys for this issuer; retry shortly.', {
          detail: `JWKS file ${this.path}: ${error instanceof Error ? error.message : String(error)}`,
        });
      });
    }
    const key = this.lookup(header);
    if (key === 'unknown_kid') throw unknownKid(header.kid);
    return key;
  }
}
