import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { debounced } from '../files/debounced.js';
import { serializeRereads } from '../files/serialized-rereads.js';
import { computeKeyStates, type KeyLifecycleSettings, type KeyStates } from './key-lifecycle.js';
import { keyMetadataFileName, readSigningKeysDir, type SigningKeyFile, type SigningKeySet, type SigningKeysDirContents } from './signing-key-set.js';
import type { SigningKey } from './signing-key.js';
import type { SigningAlgorithm } from '../protocol.js';

/** The periodic re-read: fs.watch misses events around the kubelet's `..data` symlink swap, so it is only a shortcut. */
export const DEFAULT_RESCAN_INTERVAL_MS = 10_000;

/** A burst of watch events (one Secret update renames several entries) becomes one re-read after this quiet time. */
const WATCH_DEBOUNCE_MS = 250;

export interface SigningKeyDirectoryOptions {
  readonly dir: string;
  readonly algorithm: SigningAlgorithm;
  readonly lifecycle: KeyLifecycleSettings;
  /** The clock every state is computed from (ms since the epoch). */
  readonly now: () => number;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Re-read the directory this often; 0 disables the timer (tests call `rescan()`). Default 10 s. */
  readonly rescanIntervalMs?: number;
  /** Also re-read on fs.watch events. Default true. */
  readonly watch?: boolean;
}

/** How the directory is doing, for readiness and `keys list`. */
export interface SigningKeyDirectoryStatus {
  readonly dir: string;
  /** A key can sign now. Stays true through read errors: the last good key set stays in force. */
  readonly canSign: boolean;
  /** When the key set in force was last read successfully (ms). */
  readonly lastLoadedAt: number;
  /** Present while the latest read failed: what went wrong and since when (the last good set is in use). */
  readonly lastError?: { readonly message: string; readonly since: number };
}

/** A key set read from a directory, re-read on change, whose states follow the clock. */
export interface SigningKeyDirectory extends SigningKeySet {
  states(): KeyStates<SigningKey>;
  onChange(listener: () => void): () => void;
  /** The key files in force (the last good read). */
  files(): readonly SigningKeyFile[];
  status(): SigningKeyDirectoryStatus;
  /** Re-reads the directory now; resolves false when the read failed and the last good set was kept. */
  rescan(): Promise<boolean>;
  /** Stops watching and re-reading; resolves once a read in progress has finished. */
  close(): Promise<void>;
}

function fingerprintOf(files: readonly SigningKeyFile[]): string {
  return files.map((f) => `${f.key.kid}@${f.key.createdAt}@${f.key.source}`).join('\n');
}

/** What listeners and logs care about: which key signs and every key's state. */
function signatureOf(states: KeyStates<SigningKey>): string {
  const parts = [...states.states].map(([kid, s]) => `${kid}:${s.state}:${s.since}`).sort();
  return `${states.active?.kid ?? '-'}|${states.activeEarly}|${parts.join(',')}`;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Reads the keys directory and keeps it current: fs.watch plus a periodic re-read, with the whole set swapped
 * atomically, so readers never see a half-read directory. A read that fails (empty directory, corrupt file, a
 * swap in progress) keeps the last good set in force and is logged. States follow the injected clock: they are
 * re-evaluated on every `active()`/`published()`/`states()` call once a transition is due, and on every re-read.
 * Throws when the first read fails: there is no good set to fall back on.
 */
export async function openSigningKeyDirectory(options: SigningKeyDirectoryOptions): Promise<SigningKeyDirectory> {
  const { dir, algorithm, lifecycle, now, logger } = options;
  const initial = await readSigningKeysDir(dir, algorithm);

  let files = initial.files;
  let fingerprint = fingerprintOf(files);
  let lastLoadedAt = now();
  let lastError: { message: string; since: number } | undefined;
  let evaluatedAt = now();
  let evaluation = computeKeyStates(keysOf(files), evaluatedAt, lifecycle);
  let signature = signatureOf(evaluation);
  const listeners = new Set<() => void>();
  let closed = false;

  function keysOf(list: readonly SigningKeyFile[]): SigningKey[] {
    return list.map((f) => f.key);
  }

  function warnAboutMissingMetadata(list: readonly SigningKeyFile[], kubernetesMount: boolean): void {
    if (!kubernetesMount) return;
    for (const file of list) {
      if (file.createdFrom !== 'mtime') continue;
      // The kubelet rewrites every file of a Secret on any change, so modification times restart each key's lifecycle.
      logger.warn(
        { kid: file.key.kid, file: file.key.source, metadata: keyMetadataFileName(file.key.source) },
        'signing key has no metadata file in a Kubernetes mount: its creation time is the mtime, which every Secret update resets; add the metadata file (token-broker keys generate --k8s-secret writes it)',
      );
    }
  }

  /**
   * The pending window counts from a key's creation time, not from when this process first saw it: a key whose
   * metadata was written long before the Secret was applied arrives already past its window and signs at once,
   * before Tyk can have fetched it. Nothing can make that safe after the fact; say so loudly.
   */
  function warnAboutLateArrival(knownKids: ReadonlySet<string>): void {
    const active = evaluation.active;
    if (active === undefined || knownKids.has(active.kid) || evaluation.activeEarly) return;
    logger.warn(
      { kid: active.kid, createdAt: new Date(active.createdAt).toISOString(), prePublishSeconds: lifecycle.prePublishSeconds },
      'a new signing key appeared already past its pending window and signs at once: Tyk may refuse its tokens until its cached JWKS expires; apply generated keys promptly, or date them later',
    );
  }

  function logStates(previous: KeyStates<SigningKey> | undefined, next: KeyStates<SigningKey>): void {
    for (const [kid, info] of next.states) {
      const before = previous?.states.get(kid);
      if (before?.state === info.state) continue;
      logger.info(
        { kid, from: before?.state ?? null, state: info.state, since: new Date(info.since).toISOString(), next: info.nextState ?? null, at: info.nextTransitionAt !== undefined ? new Date(info.nextTransitionAt).toISOString() : null },
        `signing key ${info.state}`,
      );
    }
    if (next.activeEarly && next.active !== undefined && (previous === undefined || !previous.activeEarly || previous.active?.kid !== next.active.kid)) {
      logger.warn(
        { kid: next.active.kid, publishedSince: new Date(next.active.createdAt).toISOString() },
        'no signing key has been published for signing.prePublishSeconds yet: signing early with the oldest key (first deployment?); Tyk refuses its tokens until its cached JWKS expires',
      );
    }
  }

  /** Recomputes the states and, if anything changed, swaps them in and tells the listeners. */
  function reevaluate(at: number): void {
    const previous = evaluation;
    const next = computeKeyStates(keysOf(files), at, lifecycle);
    evaluatedAt = at;
    // One assignment: a reader sees either the old evaluation or the new one, never a mix.
    evaluation = next;
    const nextSignature = signatureOf(next);
    if (nextSignature === signature) return;
    signature = nextSignature;
    logStates(previous, next);
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        // Side channels (metrics) never break signing.
        logger.error({ error: errorMessage(error) }, 'signing key change listener failed');
      }
    }
  }

  function current(): KeyStates<SigningKey> {
    const at = now();
    const due = evaluation.nextTransitionAt !== undefined && at >= evaluation.nextTransitionAt;
    // A clock that went backwards (tests, NTP steps) also needs a fresh evaluation.
    if (due || at < evaluatedAt) reevaluate(at);
    return evaluation;
  }

  async function readOnce(): Promise<boolean> {
    if (closed) return false;
    let contents: SigningKeysDirContents;
    try {
      contents = await readSigningKeysDir(dir, algorithm);
    } catch (error) {
      const message = errorMessage(error);
      // Logged when it starts or changes, not on every periodic re-read; status() keeps it meanwhile.
      if (lastError?.message !== message) {
        logger.error({ dir, error: message, kids: evaluation.published.map((k) => k.kid) }, 'cannot read the signing keys directory: keeping the last good key set');
        lastError = { message, since: now() };
      }
      current();
      return false;
    }
    if (closed) return false;
    if (lastError !== undefined) {
      logger.info({ dir, failingSince: new Date(lastError.since).toISOString() }, 'signing keys directory readable again');
      lastError = undefined;
    }
    lastLoadedAt = now();
    const nextFingerprint = fingerprintOf(contents.files);
    if (nextFingerprint !== fingerprint) {
      const knownKids = new Set(files.map((f) => f.key.kid));
      files = contents.files;
      fingerprint = nextFingerprint;
      logger.info({ dir, keys: files.map((f) => ({ kid: f.key.kid, file: f.key.source, createdAt: new Date(f.key.createdAt).toISOString(), createdFrom: f.createdFrom })) }, 'signing keys reloaded');
      warnAboutMissingMetadata(files, contents.kubernetesMount);
      reevaluate(now());
      warnAboutLateArrival(knownKids);
    } else {
      current();
    }
    ensureWatching();
    return true;
  }

  const { rescan, settled } = serializeRereads(readOnce);

  let watcher: FSWatcher | undefined;
  const rescanAfterEvents = debounced(() => void rescan(), WATCH_DEBOUNCE_MS);
  function ensureWatching(): void {
    if (closed || options.watch === false || watcher !== undefined) return;
    try {
      watcher = watch(dir, { persistent: false }, () => rescanAfterEvents.trigger());
      watcher.on('error', (error) => {
        // The periodic re-read carries on; a later successful read watches again.
        logger.warn({ dir, error: errorMessage(error) }, 'watching the signing keys directory failed; relying on the periodic re-read');
        watcher?.close();
        watcher = undefined;
      });
    } catch (error) {
      logger.warn({ dir, error: errorMessage(error) }, 'cannot watch the signing keys directory; relying on the periodic re-read');
      watcher = undefined;
    }
  }

  const intervalMs = options.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
  const interval = intervalMs > 0 ? setInterval(() => void rescan(), intervalMs) : undefined;
  interval?.unref();

  logStates(undefined, evaluation);
  warnAboutMissingMetadata(files, initial.kubernetesMount);
  ensureWatching();

  return {
    active: () => current().active,
    published: () => current().published,
    states: current,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    files: () => files,
    status() {
      const canSign = current().active !== undefined;
      return lastError === undefined ? { dir, canSign, lastLoadedAt } : { dir, canSign, lastLoadedAt, lastError: { ...lastError } };
    },
    rescan,
    async close() {
      closed = true;
      if (interval !== undefined) clearInterval(interval);
      rescanAfterEvents.cancel();
      watcher?.close();
      watcher = undefined;
      listeners.clear();
      await settled();
    },
  };
}
