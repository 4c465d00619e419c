import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { debounced } from './debounced.js';
import type { SerializedRereads } from './serialized-rereads.js';

/** A watch event burst (one write, rename or `..data` swap) becomes one re-read after this quiet time. */
const WATCH_DEBOUNCE_MS = 250;

export interface RereadTriggerOptions {
  /** The directories of the watched files: a watch on the file itself loses it when the kubelet swaps `..data`. */
  readonly directories: Iterable<string>;
  readonly rereads: SerializedRereads;
  /** 0 disables the timer (tests re-read themselves). */
  readonly intervalMs: number;
  /** Also re-read on fs.watch events. */
  readonly watch: boolean;
  /** What is watched and what still re-reads it without the watch, for the warnings: "TLS files", "the periodic re-read". */
  readonly what: string;
  readonly fallback: string;
  readonly logger: Pick<Logger, 'warn'>;
}

export interface RereadTriggers {
  /** Stops the watch and the timer; resolves once a re-read in progress has finished. */
  close(): Promise<void>;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * What makes a watched file be read again: fs.watch of its directory (debounced), and a periodic re-read, because
 * fs.watch misses events around the kubelet's `..data` symlink swap and is only a shortcut. Shared by the TLS files
 * and the configuration file; a watch that cannot be set up is a warning, since the timer still re-reads.
 */
export function rereadOnChange(options: RereadTriggerOptions): RereadTriggers {
  const { rereads, logger, what, fallback } = options;
  const watchers: FSWatcher[] = [];
  const rescanAfterEvents = debounced(() => void rereads.rescan(), WATCH_DEBOUNCE_MS);
  if (options.watch) {
    for (const directory of new Set(options.directories)) {
      try {
        const watcher = watch(directory, { persistent: false }, () => rescanAfterEvents.trigger());
        watcher.on('error', (error) => logger.warn({ directory, error: errorMessage(error) }, `watching ${what} failed; relying on ${fallback}`));
        watchers.push(watcher);
      } catch (error) {
        logger.warn({ directory, error: errorMessage(error) }, `cannot watch ${what}; relying on ${fallback}`);
      }
    }
  }
  const interval = options.intervalMs > 0 ? setInterval(() => void rereads.rescan(), options.intervalMs) : undefined;
  interval?.unref();
  return {
    async close() {
      if (interval !== undefined) clearInterval(interval);
      rescanAfterEvents.cancel();
      for (const watcher of watchers) watcher.close();
      await rereads.settled();
    },
  };
}
