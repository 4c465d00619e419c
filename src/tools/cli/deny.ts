import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ADMIN_DENIES_PATH } from '../../server/http/admin-app.js';
import { pino, type Logger } from 'pino';
import { loadConfigFile, ConfigError, type ConfigEnvironment } from '../../server/config/load-config.js';
import { RedisConnection, createRedisClient } from '../../server/cache/redis-connection.js';
import { RedisDenyStore } from '../../server/deny/redis-deny-store.js';
import { RedisAuditStream } from '../../server/observability/audit-stream.js';
import { addDeny, listDenies, removeDeny, type DenyOperations } from '../../server/deny/deny-operations.js';
import { DENY_FACETS, isDenyId, type Deny } from '../../server/deny/deny.js';
import { REDACT_PATHS, REDACTION_CENSOR } from '../../server/observability/log-redaction.js';
import type { BrokerConfig } from '../../server/config/schema.js';
import { createIssuedTokenRevoker } from '../../server/deny/tyk-key-revocation.js';
import { RedisTokenCache } from '../../server/cache/redis-token-cache.js';

export const DENY_USAGE = `Usage: token-broker deny add|list|remove --config FILE [options]

  The kill switch. Denies live in the Redis of the configuration (cache.redis), shared by every replica; each
  replica applies a change within a second (pub/sub, with a poll as safety net). A denied workload is refused
  with 403 access_denied (reason denied) and the deny's reason; no cached token is served to it.

  deny add --config FILE FACET... --until DURATION --reason TEXT [--by NAME]
    --issuer NAME            A configured issuer name (issuers[].name).
    --namespace NAME
    --service-account NAME
    --workflow NAME          An Argo workflow run (pod label workflows.argoproj.io/workflow).
    --jti ID                 One issued access token (its jti, from the token response or the audit record):
                             the cache never serves it again; in tyk-key mode its Tyk key is deleted.
                             At least one facet; all given must match, exactly (no globs).
    --until DURATION         How long: 90s, 30m, 2h, 7d (at most 30d).
    --reason TEXT            Sent to the refused workload and logged (at most 200 characters).
    --by NAME                Who adds it, for the audit record (default: cli).
  deny list --config FILE [--format text|json]
  deny remove --config FILE ID [--by NAME]

  Each add and remove writes an audit record: a JSON line on stderr, and the Redis audit stream when
  audit.redisStream is configured.

  Instead of --config FILE, --admin-url URL --admin-token-file FILE sends the same request to a broker's admin
  endpoint (config admin; e.g. http://127.0.0.1:9090 through kubectl port-forward), which stores, audits and, in
  tyk-key mode, deletes the keys itself; the only way to reach a broker that runs without Redis.

Exit status: 0 done; 1 Redis unreachable, no such deny, or too many denies; 2 usage error or invalid
configuration.`;

const FLAG_OF: Record<(typeof DENY_FACETS)[number], string> = {
  issuer: 'issuer',
  namespace: 'namespace',
  serviceAccount: 'service-account',
  workflow: 'workflow',
  jti: 'jti',
};

class UsageError extends Error {}

function usage(message: string): never {
  throw new UsageError(message);
}

/** One line per deny, for a person at a terminal during an incident. */
export function formatDenyTable(denies: readonly Deny[]): string {
  if (denies.length === 0) return 'no denies in force';
  const rows = denies.map((deny) => [
    deny.id,
    DENY_FACETS.filter((facet) => deny.match[facet] !== undefined)
      .map((facet) => `${facet}=${deny.match[facet]}`)
      .join(','),
    deny.until === undefined ? 'until removed' : new Date(deny.until).toISOString(),
    deny.createdBy,
    deny.reason,
  ]);
  const header = ['ID', 'MATCH', 'UNTIL', 'BY', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** A deny as JSON for scripts: times in RFC 3339. */
export function denyJson(deny: Deny): Record<string, unknown> {
  return {
    id: deny.id,
    match: deny.match,
    until: deny.until === undefined ? null : new Date(deny.until).toISOString(),
    reason: deny.reason,
    createdAt: new Date(deny.createdAt).toISOString(),
    createdBy: deny.createdBy,
  };
}

interface TykKeyDeletions {
  readonly deleted: number;
  readonly failed: number;
}

/**
 * Prints an added deny (its JSON form, from Redis or from the admin endpoint) and the Tyk keys its revocation
 * deleted; exit status 1 when a deletion failed, since those keys still work. `failuresIn`: where the failures are told.
 */
function reportAdded(format: 'text' | 'json', deny: Record<string, unknown>, tykKeys: TykKeyDeletions | undefined, failuresIn: string): number {
  if (format === 'json') console.log(JSON.stringify({ ...deny, ...(tykKeys !== undefined && { tykKeys }) }));
  else {
    console.log(`added deny ${String(deny.id)}, in force until ${String(deny.until)}`);
    if (tykKeys !== undefined) console.log(`deleted ${tykKeys.deleted} issued Tyk key(s)${tykKeys.failed > 0 ? `; ${tykKeys.failed} deletion(s) FAILED, see ${failuresIn}` : ''}`);
  }
  return tykKeys !== undefined && tykKeys.failed > 0 ? 1 : 0;
}

async function withOperations(configPath: string, env: ConfigEnvironment, run: (ops: DenyOperations) => Promise<number>): Promise<number> {
  let config: BrokerConfig;
  try {
    config = await loadConfigFile(configPath, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 2;
  }
  const redisConfig = config.cache.redis;
  if (redisConfig === undefined) {
    console.error(
      `token-broker deny: ${configPath} has no cache.redis: shared denies live in Redis. Without Redis, use the admin endpoint of the replica (admin block) or denies.static.`,
    );
    return 2;
  }
  // Audit lines and Redis state go to stderr as JSON; stdout is the command's answer.
  const logger: Logger = pino({ level: 'info', base: { service: 'token-broker', component: 'deny-cli' }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: [...REDACT_PATHS], censor: REDACTION_CENSOR } }, pino.destination(2));
  const connection = new RedisConnection(createRedisClient({ ...redisConfig, commandTimeoutMs: Math.max(redisConfig.commandTimeoutMs, 2000) }), redisConfig.keyPrefix, logger.child({}, { level: 'error' }));
  try {
    try {
      await connection.waitUntilUp(5000);
    } catch {
      console.error('token-broker deny: cannot reach Redis (cache.redis) within 5 s; nothing was changed.');
      return 1;
    }
    const ops: DenyOperations = {
      store: new RedisDenyStore(connection),
      logger,
      auditStream: config.audit.redisStream === undefined ? undefined : new RedisAuditStream(connection, config.audit.redisStream.key, config.audit.redisStream.maxLen),
      now: Date.now,
      // The CLI shares the replicas' cache through Redis: the same scan finds what any replica cached.
      revokeIssued: createIssuedTokenRevoker(config, new RedisTokenCache(connection), logger),
    };
    return await run(ops);
  } finally {
    logger.flush();
    await connection.close();
  }
}

async function add(args: readonly string[], env: ConfigEnvironment): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      issuer: { type: 'string' },
      namespace: { type: 'string' },
      'service-account': { type: 'string' },
      workflow: { type: 'string' },
      jti: { type: 'string' },
      until: { type: 'string' },
      reason: { type: 'string' },
      by: { type: 'string' },
      format: { type: 'string' },
      'admin-url': { type: 'string' },
      'admin-token-file': { type: 'string' },
    },
  });
  if (positionals.length > 0) usage(`unexpected argument "${positionals[0]}"`);
  const target = targetOf(values);
  const match: Record<string, string> = {};
  for (const facet of DENY_FACETS) {
    const value = values[FLAG_OF[facet] as keyof typeof values];
    if (typeof value === 'string') match[facet] = value;
  }
  if (Object.keys(match).length === 0) usage('name at least one of --issuer, --namespace, --service-account, --workflow, --jti');
  if (values.until === undefined) usage('--until DURATION is required (e.g. 30m, 2h, 7d; at most 30d)');
  if (values.reason === undefined) usage('--reason TEXT is required');
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') usage('--format is text or json');
  if (target.kind === 'admin') {
    const answer = await callAdmin(target, 'POST', ADMIN_DENIES_PATH, { match, until: values.until, reason: values.reason, ...(values.by !== undefined && { by: values.by }) });
    if (answer === undefined) return 1;
    if (answer.status !== 201) return adminFailure('add', answer);
    const body = answer.body as { deny: Record<string, unknown>; tykKeys?: TykKeyDeletions };
    return reportAdded(format, body.deny, body.tykKeys, "the broker's log");
  }
  return withOperations(target.config, env, async (ops) => {
    const outcome = await addDeny(ops, { match, until: values.until, reason: values.reason }, values.by ?? 'cli');
    switch (outcome.status) {
      case 'invalid':
        console.error(`token-broker deny add: invalid deny\n${outcome.problems.map((p) => `  ${p.field.replace(/^match\./, '')}: ${p.message}`).join('\n')}`);
        return 2;
      case 'unavailable':
        console.error('token-broker deny add: Redis failed during the write; run deny list to see whether the deny was stored.');
        return 1;
      case 'too_many':
        console.error('token-broker deny add: 1000 denies are in force already; remove some first (deny list, deny remove), or deny a broader facet.');
        return 1;
      case 'added':
        return reportAdded(format, denyJson(outcome.deny), outcome.tykKeys, 'stderr');
    }
  });
}

async function list(args: readonly string[], env: ConfigEnvironment): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { config: { type: 'string', short: 'c' }, format: { type: 'string' }, ...ADMIN_OPTIONS } });
  if (positionals.length > 0) usage(`unexpected argument "${positionals[0]}"`);
  const target = targetOf(values);
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') usage('--format is text or json');
  if (target.kind === 'admin') {
    const answer = await callAdmin(target, 'GET', ADMIN_DENIES_PATH);
    if (answer === undefined) return 1;
    if (answer.status !== 200) return adminFailure('list', answer);
    const listed = (answer.body as { denies: (Record<string, unknown> & { until: string | null; createdAt: string })[] }).denies;
    if (format === 'json') console.log(JSON.stringify(listed));
    else {
      console.log(
        formatDenyTable(
          listed.map((d) => ({ ...(d as unknown as Deny), until: d.until === null ? undefined : Date.parse(d.until), createdAt: Date.parse(d.createdAt) })),
        ),
      );
    }
    return 0;
  }
  return withOperations(target.config, env, async (ops) => {
    const denies = await listDenies(ops);
    if (denies === 'unavailable') {
      console.error('token-broker deny list: Redis failed during the read.');
      return 1;
    }
    console.log(format === 'json' ? JSON.stringify(denies.map(denyJson)) : formatDenyTable(denies));
    return 0;
  });
}

async function remove(args: readonly string[], env: ConfigEnvironment): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { config: { type: 'string', short: 'c' }, by: { type: 'string' }, ...ADMIN_OPTIONS } });
  const target = targetOf(values);
  const [id, ...rest] = positionals;
  if (id === undefined || rest.length > 0) usage('give exactly one deny ID (see deny list)');
  if (!isDenyId(id)) usage(`"${id.slice(0, 80)}" is not a deny id`);
  if (target.kind === 'admin') {
    const answer = await callAdmin(target, 'DELETE', `${ADMIN_DENIES_PATH}/${encodeURIComponent(id)}`);
    if (answer === undefined) return 1;
    if (answer.status !== 200) return adminFailure('remove', answer);
    console.log(`removed deny ${id}`);
    return 0;
  }
  return withOperations(target.config, env, async (ops) => {
    const outcome = await removeDeny(ops, id, values.by ?? 'cli');
    if (outcome.status === 'unavailable') {
      console.error('token-broker deny remove: Redis failed during the write; run deny list to see whether it is gone.');
      return 1;
    }
    if (outcome.status === 'not_found') {
      console.error(`token-broker deny remove: no deny ${id} in Redis (static denies are removed from the configuration)`);
      return 1;
    }
    console.log(`removed deny ${id}`);
    return 0;
  });
}

const ADMIN_OPTIONS = { 'admin-url': { type: 'string' }, 'admin-token-file': { type: 'string' } } as const;

type Target = { readonly kind: 'redis'; readonly config: string } | { readonly kind: 'admin'; readonly url: string; readonly tokenFile: string };

/** Where the command goes: the Redis of --config FILE, or the admin endpoint of --admin-url. */
function targetOf(values: { config?: string | undefined; 'admin-url'?: string | undefined; 'admin-token-file'?: string | undefined }): Target {
  const url = values['admin-url'];
  if (url !== undefined) {
    if (values.config !== undefined) usage('give --config FILE or --admin-url URL, not both');
    if (values['admin-token-file'] === undefined) usage('--admin-url needs --admin-token-file FILE (the admin bearer secret)');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      usage('--admin-url must be an http(s) URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') usage('--admin-url must be an http(s) URL');
    return { kind: 'admin', url: parsed.origin, tokenFile: values['admin-token-file'] };
  }
  if (values.config === undefined) usage('--config FILE (or --admin-url URL) is required');
  return { kind: 'redis', config: values.config };
}

/** One admin API call; undefined after printing why it could not be made (exit 1). */
async function callAdmin(target: Extract<Target, { kind: 'admin' }>, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown } | undefined> {
  let secret: string;
  try {
    secret = (await readFile(target.tokenFile, 'utf8')).trim();
  } catch (error) {
    console.error(`token-broker deny: cannot read --admin-token-file ${target.tokenFile} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    return undefined;
  }
  try {
    const response = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
      redirect: 'error',
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = {};
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    console.error(`token-broker deny: cannot reach the admin endpoint ${target.url} (${error instanceof Error ? error.name : 'error'}); nothing was changed.`);
    return undefined;
  }
}

/** Prints the admin endpoint's refusal; exit 2 for an invalid deny, 1 otherwise. */
function adminFailure(what: string, answer: { status: number; body: unknown }): number {
  const body = answer.body as { error?: string; error_description?: string; problems?: { field: string; message: string }[] };
  const problems = (body.problems ?? []).map((p) => `\n  ${p.field.replace(/^match\./, '')}: ${p.message}`).join('');
  console.error(`token-broker deny ${what}: the admin endpoint answered ${answer.status} ${body.error ?? ''}: ${body.error_description ?? ''}${problems}`);
  return answer.status === 400 ? 2 : 1;
}

/** `token-broker deny add|list|remove ...`. */
export async function deny(args: readonly string[], env: ConfigEnvironment): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'add':
        return await add(rest, env);
      case 'list':
        return await list(rest, env);
      case 'remove':
        return await remove(rest, env);
      default:
        usage(sub === undefined ? 'give add, list or remove' : `unknown sub-command "${sub}"`);
    }
  } catch (error) {
    const message = error instanceof UsageError ? error.message : error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS') ? error.message : undefined;
    if (message === undefined) throw error;
    console.error(`token-broker deny: ${message}\n\n${DENY_USAGE}`);
    return 2;
  }
}
