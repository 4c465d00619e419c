import { createHash } from 'node:crypto';
import type { BrokerConfig } from './schema.js';

/**
 * What a configuration reload may change while the broker runs, and how two configurations differ. Pure: no I/O.
 *
 * One line per top-level block of the configuration, and the type below makes a new block a compile error until
 * it is classified here. `live` blocks are swapped in on reload; a change to any `restart` field refuses the whole
 * reload (the old configuration stays in force) with the field's path and why it needs a restart.
 */
export const CONFIG_RELOAD = {
  server: { live: false, why: 'the listener (host, port, timeouts, TLS file paths) is bound at start-up; the TLS files themselves are re-read when they change' },
  issuers: { live: true },
  signing: { live: false, why: 'the signing keys are opened at start-up; the keys directory itself is watched' },
  tokens: { live: true, restartFields: ['format', 'maxTtlSeconds'], why: 'the minter, and the signing keys\' retirement schedule that follows the longest token lifetime, are set at start-up' },
  rules: { live: true },
  cache: { live: false, why: 'the token cache and the Redis connection are opened at start-up' },
  kubernetes: { live: true },
  explain: { live: false, why: 'the HTTP routes are mounted at start-up' },
  tyk: { live: false, why: 'the Tyk key minter is built at start-up' },
  policies: { live: true },
  apis: { live: true },
  limits: { live: false, why: 'the mint rate limiter is built at start-up' },
  audit: { live: false, why: 'the audit stream is opened at start-up' },
  logging: { live: false, why: 'the logger is built at start-up' },
  metrics: { live: false, why: 'the metric label sets are declared at start-up' },
  denies: { live: true, restartFields: ['pollSeconds'], why: 'the shared-deny poll is started at start-up' },
  admin: { live: false, why: 'the admin listener is bound at start-up' },
} as const satisfies { readonly [Block in keyof Required<BrokerConfig>]: SectionReload<Block> };

type SectionReload<Block extends keyof BrokerConfig> =
  | { readonly live: false; readonly why: string }
  | { readonly live: true; readonly restartFields?: readonly (keyof NonNullable<BrokerConfig[Block]>)[]; readonly why?: string };

/** A field whose change needs a restart: where, and why. */
export interface RestartOnlyChange {
  readonly path: string;
  readonly why: string;
}

/** JSON with object keys sorted, so key order in the YAML never makes two equal configurations differ. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const MAX_PATHS_PER_BLOCK = 10;

/** The paths (`cache.redis.url`) at which two values differ, leaves first found; at most `limit`. Never the values. */
function differingPaths(before: unknown, after: unknown, path: string, out: string[], limit: number): void {
  if (out.length >= limit) return;
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const key of keys) differingPaths(before[key], after[key], `${path}.${key}`, out, limit);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    before.forEach((item, i) => differingPaths(item, after[i], `${path}[${i}]`, out, limit));
    return;
  }
  if (canonicalJson(before) !== canonicalJson(after)) out.push(path);
}

/**
 * The fields that differ between the configuration in force and a candidate, in blocks (or fields) that cannot
 * change without a restart. Empty: the candidate may be swapped in. Paths only, never values (a Redis URL may
 * hold a password).
 */
export function restartOnlyChanges(current: BrokerConfig, next: BrokerConfig): RestartOnlyChange[] {
  const changes: RestartOnlyChange[] = [];
  for (const [block, rule] of Object.entries(CONFIG_RELOAD) as [keyof BrokerConfig, SectionReload<keyof BrokerConfig>][]) {
    const before: unknown = current[block];
    const after: unknown = next[block];
    const paths: string[] = [];
    if (!rule.live) {
      differingPaths(before, after, block, paths, MAX_PATHS_PER_BLOCK);
      changes.push(...paths.map((path) => ({ path, why: rule.why })));
      continue;
    }
    for (const field of rule.restartFields ?? []) {
      const read = (v: unknown): unknown => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[field as string] : undefined);
      differingPaths(read(before), read(after), `${block}.${String(field)}`, paths, MAX_PATHS_PER_BLOCK);
    }
    changes.push(...paths.map((path) => ({ path, why: rule.why ?? 'set at start-up' })));
  }
  return changes;
}

/** Rule names added, removed, and changed in place (same name, different content), each sorted. */
export interface RuleNameDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

/** How the rules of two configurations differ, by rule name: what the reload log line reports. */
export function diffRuleNames(current: readonly BrokerConfig['rules'][number][], next: readonly BrokerConfig['rules'][number][]): RuleNameDiff {
  const before = new Map(current.map((rule) => [rule.name, canonicalJson(rule)]));
  const after = new Map(next.map((rule) => [rule.name, canonicalJson(rule)]));
  return {
    added: [...after.keys()].filter((name) => !before.has(name)).sort(),
    removed: [...before.keys()].filter((name) => !after.has(name)).sort(),
    changed: [...after].filter(([name, text]) => before.has(name) && before.get(name) !== text).map(([name]) => name).sort(),
  };
}

/** A URL with its password (and user name) removed. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return '';
  }
}

/** What putting a candidate configuration in force did (Broker.reconfigure). Hashes: the candidate's, and the one in force before. */
export type Reconfiguration =
  | { readonly applied: true; readonly hash: string; readonly previousHash: string; readonly rules: RuleNameDiff }
  | { readonly applied: false; readonly hash: string; readonly previousHash: string; readonly refused: readonly RestartOnlyChange[] };

/**
 * A short content hash of a configuration (12 hex digits of SHA-256 over its canonical JSON), the `hash` label of
 * token_broker_config_info and the reload log line: equal for equal configurations whatever the YAML's key order.
 * The Redis URL's credentials are left out, so the label says nothing about a password.
 */
export function configHash(config: BrokerConfig): string {
  const redis = config.cache.redis;
  const hashed = redis?.url === undefined ? config : { ...config, cache: { ...config.cache, redis: { ...redis, url: withoutCredentials(redis.url) } } };
  return createHash('sha256').update(canonicalJson(hashed)).digest('hex').slice(0, 12);
}
