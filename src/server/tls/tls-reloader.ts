import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { serializeRereads } from '../files/serialized-rereads.js';
import { rereadOnChange } from '../files/reread-triggers.js';
import { readTlsCredentials, type TlsCredentials, type TlsFiles } from './tls-credentials.js';

/** The periodic re-read: fs.watch misses events around the kubelet's `..data` symlink swap, so it is only a shortcut. */
export const DEFAULT_TLS_RESCAN_INTERVAL_MS = 10_000;

export interface TlsReloaderOptions {
  readonly files: TlsFiles;
  /** The credentials the listener started with. */
  readonly initial: TlsCredentials;
  /** Puts new credentials in force for new connections (`server.setSecureContext`). */
  readonly apply: (credentials: TlsCredentials) => void;
  /** After every re-read: whether it succeeded, and the credentials in force. */
  readonly onRead?: (ok: boolean, inForce: TlsCredentials) => void;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Default 10 s; 0 disables the timer (tests call `rescan()`). */
  readonly rescanIntervalMs?: number;
  /** Also re-read on fs.watch events of the files' directories. Default true. */
  readonly watch?: boolean;
}

export interface TlsReloader {
  /** Re-reads the files now; resolves false when they could not be used and the credentials in force were kept. */
  rescan(): Promise<boolean>;
  inForce(): TlsCredentials;
  close(): Promise<void>;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Keeps the listener's certificate current: re-reads the files on change and every 10 s, and swaps them in
 * only when the new set forms a valid context, so a renewal half-written to disk never reaches a client.
 * Connections already open keep the certificate they were accepted with; no restart, nothing dropped.
 */
export function reloadTlsOnChange(options: TlsReloaderOptions): TlsReloader {
  const { files, apply, logger } = options;
  let inForce = options.initial;
  let lastError: string | undefined;
  let closed = false;

  async function readOnce(): Promise<boolean> {
    if (closed) return false;
    let next: TlsCredentials;
    try {
      next = await readTlsCredentials(files);
    } catch (error) {
      const message = errorMessage(error);
      // Logged when it starts or changes, not on every periodic re-read.
      if (lastError !== message) logger.error({ error: message, notAfter: new Date(inForce.notAfter).toISOString() }, 'cannot reload the TLS certificate: keeping the one in force');
      lastError = message;
      options.onRead?.(false, inForce);
      return false;
    }
    if (closed) return false;
    if (lastError !== undefined) logger.info({}, 'TLS files usable again');
    lastError = undefined;
    if (next.contentDigest !== inForce.contentDigest) {
      apply(next);
      logger.info(
        { subject: next.subject, fingerprint256: next.fingerprint256, notAfter: new Date(next.notAfter).toISOString(), previousNotAfter: new Date(inForce.notAfter).toISOString() },
        'TLS certificate reloaded: new connections get it',
      );
      inForce = next;
    }
    options.onRead?.(true, inForce);
    return true;
  }

  const rereads = serializeRereads(readOnce);
  const triggers = rereadOnChange({
    directories: [files.certFile, files.keyFile, ...(files.clientCaFile === undefined ? [] : [files.clientCaFile])].map((file) => dirname(file)),
    rereads,
    intervalMs: options.rescanIntervalMs ?? DEFAULT_TLS_RESCAN_INTERVAL_MS,
    watch: options.watch !== false,
    what: 'TLS files',
    fallback: 'the periodic re-read',
    logger,
  });

  return {
    rescan: rereads.rescan,
    inForce: () => inForce,
    async close() {
      closed = true;
      await triggers.close();
    },
  };
}
