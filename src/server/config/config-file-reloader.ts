import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { serializeRereads } from '../files/serialized-rereads.js';
import { rereadOnChange } from '../files/reread-triggers.js';
import { ConfigError, loadConfigText, type ConfigEnvironment } from './load-config.js';
import { configHash, type Reconfiguration, type RestartOnlyChange, type RuleNameDiff } from './config-reload.js';
import type { ConfigProblem } from './validate-config.js';
import type { BrokerConfig } from './schema.js';

/** The periodic re-read: fs.watch misses events around the kubelet's `..data` symlink swap, so it is only a shortcut. */
export const DEFAULT_CONFIG_RESCAN_INTERVAL_MS = 10_000;

/** What asked for a reload: SIGHUP (always attempted), or a watch event or the periodic re-read (only when the file changed). */
export type ReloadTrigger = 'signal' | 'file';

/** One reload attempt's result; `unchanged` (a re-read that found nothing new) is neither logged nor counted. */
export type ReloadAttempt =
  | { readonly result: 'success'; readonly hash: string; readonly previousHash: string; readonly rules: RuleNameDiff }
  | { readonly result: 'invalid'; readonly hash: string; readonly problems: readonly ConfigProblem[] }
  | { readonly result: 'refused'; readonly hash: string; readonly candidateHash: string; readonly refused: readonly RestartOnlyChange[] }
  | { readonly result: 'unchanged' };

export interface ConfigFileReloaderOptions {
  /** The configuration file as the operator named it: read through its symlinks, watched in its directory. */
  readonly path: string;
  /** The same overrides as at start-up (REDIS_URL, PORT...): a reload sees the configuration start-up would. */
  readonly env: ConfigEnvironment;
  /** The configuration in force. */
  readonly inForce: () => BrokerConfig;
  /** Puts a validated configuration in force, or refuses it (Broker.reconfigure). */
  readonly apply: (next: BrokerConfig) => Reconfiguration;
  /** After every attempt that was logged: metrics. Never throws into the reload. */
  readonly onAttempt?: (attempt: Exclude<ReloadAttempt, { result: 'unchanged' }>) => void;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Default 10 s; 0 disables the timer (tests trigger reloads themselves). */
  readonly rescanIntervalMs?: number;
  /** Also re-read on fs.watch events of the file's directory. Default true. */
  readonly watch?: boolean;
}

export interface ConfigFileReloader {
  /** Reloads now (SIGHUP); several calls during a reload make one more reload after it. */
  reload(trigger?: ReloadTrigger): Promise<ReloadAttempt>;
  /** Stops watching; resolves once a reload in progress has finished. */
  close(): Promise<void>;
}

/**
 * Read once, synchronously, when the reloader starts (right after start-up loaded the same file): a later read could
 * already see the next version of the file and learn the wrong convention from it. Unreadable: assume a newline.
 */
function fileEndsWithNewline(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').endsWith('\n');
  } catch {
    return true;
  }
}

const digestOf = (text: string) => createHash('sha256').update(text).digest('base64url');

/**
 * Reloads the configuration file on SIGHUP and when it changes (fs.watch of its directory, which sees the kubelet's
 * `..data` swap, and a periodic re-read): read, validate fully as at start-up, then put it in force whole or keep
 * the configuration in force. Reloads never overlap; a file re-read whose text has not changed since the last
 * attempt does nothing, so an invalid or refused file is reported once per change, not every 10 s.
 */
export function watchConfigFile(options: ConfigFileReloaderOptions): ConfigFileReloader {
  const { path, logger } = options;
  let closed = false;
  let forced = false;
  let lastDigest: string | undefined;
  /** The last attempt reported was invalid or refused: the file is not what is in force. */
  let failing = false;
  let lastAttempt: ReloadAttempt = { result: 'unchanged' };
  /**
   * Whether the operator's files end with a newline, learnt from the file as it was at start-up and from every
   * file put in force since. A ConfigMap written with YAML's `|-` has none, and must not be refused for it; a file
   * that had one and has lost it is the sign of a write cut off mid-line.
   */
  let endsWithNewline = fileEndsWithNewline(path);

  function report(attempt: Exclude<ReloadAttempt, { result: 'unchanged' }>, trigger: ReloadTrigger): ReloadAttempt {
    if (attempt.result === 'success') {
      const { added, removed, changed } = attempt.rules;
      const same = attempt.hash === attempt.previousHash;
      logger.info(
        { event: 'config_reload', result: 'success', trigger, file: path, hash: attempt.hash, previousHash: attempt.previousHash, rules: { added, removed, changed } },
        same ? 'configuration reloaded: unchanged' : `configuration reloaded: rules added ${added.length}, removed ${removed.length}, changed ${changed.length}`,
      );
    } else if (attempt.result === 'invalid') {
      logger.error(
        { event: 'config_reload', result: 'invalid', trigger, file: path, hash: attempt.hash, problems: attempt.problems },
        'configuration reload failed: the file is not a valid configuration; the configuration in force is kept',
      );
    } else {
      logger.error(
        { event: 'config_reload', result: 'refused', trigger, file: path, hash: attempt.hash, candidateHash: attempt.candidateHash, refused: attempt.refused },
        `configuration reload refused: ${attempt.refused.map((c) => c.path).join(', ')} cannot change without a restart; the configuration in force is kept (restart the broker to apply it)`,
      );
    }
    failing = attempt.result !== 'success';
    try {
      options.onAttempt?.(attempt);
    } catch (error) {
      logger.error({ error: error instanceof Error ? error.message : String(error) }, 'configuration reload listener failed');
    }
    return attempt;
  }

  async function reloadOnce(): Promise<boolean> {
    const trigger: ReloadTrigger = forced ? 'signal' : 'file';
    forced = false;
    if (closed) {
      lastAttempt = { result: 'unchanged' };
      return false;
    }
    const inForceHash = configHash(options.inForce());
    const expectNewline = endsWithNewline;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      const digest = `unreadable:${reason}`;
      if (trigger === 'file' && digest === lastDigest) return (lastAttempt = { result: 'unchanged' }), false;
      lastDigest = digest;
      lastAttempt = report({ result: 'invalid', hash: inForceHash, problems: [{ path: '(file)', message: `cannot read the file (${reason})` }] }, trigger);
      return false;
    }
    const digest = digestOf(text);
    if (trigger === 'file' && digest === lastDigest) return (lastAttempt = { result: 'unchanged' }), true;
    lastDigest = digest;
    if (!text.endsWith('\n') && expectNewline) {
      // The files in force end with a newline and this one does not: it was most likely cut off mid-write. (A file
      // cut at a line end still parses: only an atomic replacement, as a ConfigMap update is, rules that out.)
      const problem = { path: '(file)', message: 'does not end with a newline as the configuration in force did: it may be half-written; replace the file atomically (write, then rename), as a ConfigMap update does' };
      lastAttempt = report({ result: 'invalid', hash: inForceHash, problems: [problem] }, trigger);
      return false;
    }
    let next: BrokerConfig;
    try {
      next = loadConfigText(text, path, options.env);
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [{ path: '(file)', message: error instanceof Error ? error.message : String(error) }];
      lastAttempt = report({ result: 'invalid', hash: inForceHash, problems }, trigger);
      return false;
    }
    // A re-read that finds the configuration in force (the first one after start-up, a comment edited) is silent,
    // unless the last attempt failed: a file put back as it was is then reported, and clears the failure.
    if (trigger === 'file' && !failing && configHash(next) === inForceHash) return (lastAttempt = { result: 'unchanged' }), true;
    const outcome = options.apply(next);
    if (outcome.applied) endsWithNewline = text.endsWith('\n');
    lastAttempt = outcome.applied
      ? report({ result: 'success', hash: outcome.hash, previousHash: outcome.previousHash, rules: outcome.rules }, trigger)
      : report({ result: 'refused', hash: outcome.previousHash, candidateHash: outcome.hash, refused: outcome.refused }, trigger);
    return outcome.applied;
  }

  const rereads = serializeRereads(reloadOnce);
  const triggers = rereadOnChange({
    directories: [dirname(path)],
    rereads,
    intervalMs: options.rescanIntervalMs ?? DEFAULT_CONFIG_RESCAN_INTERVAL_MS,
    watch: options.watch !== false,
    what: 'the configuration file',
    fallback: 'the periodic re-read and SIGHUP',
    logger,
  });

  return {
    async reload(trigger = 'signal') {
      if (trigger === 'signal') forced = true;
      await rereads.rescan();
      return lastAttempt;
    },
    async close() {
      closed = true;
      await triggers.close();
    },
  };
}
