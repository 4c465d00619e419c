import type { Router } from 'express';
import type { Logger } from 'pino';
import { createApp, type BrokerHttpHandler } from './http/create-app.js';
import { createExchange } from './exchange/exchange-token.js';
import { compileResourceTargets } from './rules/resource-targets.js';
import { createTrustedIssuers, type TrustedIssuers } from './issuers/trusted-issuers.js';
import type { IssuerFetch } from './issuers/issuer-fetch.js';
import { VerifiedTokenCache } from './issuers/verified-token-cache.js';
import { compileRules } from './rules/compiled-rules.js';
import { MemoryTokenCache } from './cache/memory-token-cache.js';
import { RedisTokenCache } from './cache/redis-token-cache.js';
import { RedisConnection, createRedisClient } from './cache/redis-connection.js';
import { LocalMintCoordinator, RedisMintCoordinator, type MintCoordinator } from './cache/mint-coordinator.js';
import { MemoryMintRateLimiter, unlimited, type MintRateLimiter } from './limits/mint-rate-limiter.js';
import { RedisMintRateLimiter } from './limits/redis-mint-rate-limiter.js';
import { createMetrics, recordConfigInForce, type BrokerMetrics } from './observability/metrics.js';
import { RedisAuditStream } from './observability/audit-stream.js';
import { createExchangeObserver } from './observability/exchange-observer.js';
import type { KubernetesMetadataSource } from './identity/kubernetes-metadata.js';
import { createKubernetesMetadataSource } from './kubernetes/kubernetes-metadata-source.js';
import { kubernetesOf } from './config/validate-config.js';
import type { ClusterAccess } from './identity/cluster-checks.js';
import { createJwtMinter } from './mint/jwt-minter.js';
import { createTykKeyMinter } from './mint/tyk-key-minter.js';
import { ExchangeRecord } from './observability/exchange-record.js';
import type { BrokerConfig } from './config/schema.js';
export type { Reconfiguration } from './config/config-reload.js';
import { recordSigningKeyStates, type SigningKeySet } from './mint/signing-key-set.js';
import type { ReadinessReport } from './http/health-routes.js';
import type { TokenCache } from './cache/token-cache.js';
import type { ExchangeToken } from './exchange/exchange-token.js';
import type { ExplainWorkload } from './explain/explain-workload.js';
import { canonicalJson, configHash, diffRuleNames, restartOnlyChanges, type Reconfiguration } from './config/config-reload.js';
import { incomingTraceContext } from './observability/trace-context.js';
import type { Tracing } from './observability/tracing.js';
import * as traced from './observability/traced-parts.js';
// denies (the kill switch) -------------------------------------------------------------------------------------
import { DenyList } from './deny/deny-list.js';
import { staticDeniesOf } from './deny/static-denies.js';
import { RedisDenyStore } from './deny/redis-deny-store.js';
import { MemoryDenyStore } from './deny/memory-deny-store.js';
import type { DenyStore } from './deny/deny-store.js';
import { REDIS_UNAVAILABLE } from './cache/redis-connection.js';
import { startDenySync, type DenySync } from './deny/redis-deny-sync.js';
import { denyKind } from './deny/deny.js';
import { createAdminApp } from './http/admin-app.js';
import { createIssuedTokenRevoker } from './deny/tyk-key-revocation.js';
import type { Express } from 'express';
// ------------------------------------------------------------------------------------------------------------
// explain (POST /v1/explain) ------------------------------------------------------------------------------
import { createWorkloadResolver } from './exchange/resolve-workload.js';
import { verifySubjectToken } from './issuers/verify-subject-token.js';
import { subjectTemplateNeedsPod } from './mint/access-token-claims.js';
import { createWorkloadExplainer } from './explain/explain-workload.js';
// ------------------------------------------------------------------------------------------------------------

export interface BrokerOptions {
  readonly logger: Logger;
  readonly signingKeys: SigningKeySet;
  readonly now?: () => number;
  readonly extraRoutes?: Router;
  /** Replaces the Kubernetes API client (tests give a source bound to a stand-in through a kubeconfig). */
  readonly kubernetesSource?: (settings: NonNullable<BrokerConfig['kubernetes']>) => KubernetesMetadataSource;
  /** OpenTelemetry tracing (src/server/observability/tracing.ts); absent, nothing is traced and no span is made. */
  readonly tracing?: Tracing | undefined;
}

/** The broker assembled from its parts: what `serve` runs and what HTTP tests drive through supertest. */
export interface Broker {
  readonly app: BrokerHttpHandler;
  readonly metrics: BrokerMetrics;
  readonly issuers: TrustedIssuers;
  readonly cache: TokenCache;
  /** Subject tokens whose signature was verified, by SHA-256 (see VerifiedTokenCache). */
  readonly verifiedTokens: VerifiedTokenCache;
  /** Present when Redis is configured. */
  readonly redis: RedisConnection | undefined;
  /** The denies this replica enforces (static, and shared from Redis). */
  readonly denies: DenyList;
  /** Denies added at run time: in Redis when configured (shared), else in this process's memory. */
  readonly denyStore: DenyStore;
  /** Re-reads the denies added at run time now. */
  refreshDenies(): Promise<void>;
  /** The admin listener's application (config `admin`); undefined when the admin endpoint is off. */
  readonly adminApp: Express | undefined;
  readiness(): ReadinessReport;
  /** Loads every issuer's keys now, and keeps retrying the ones that fail until they load. */
  warmUp(): Promise<void>;
  /** The configuration in force (the one given at creation, or the last one `reconfigure` put in force). */
  config(): BrokerConfig;
  /**
   * Puts a validated configuration in force without a restart, or refuses it whole when it changes a field that
   * needs one (src/server/config/config-reload.ts). An exchange in flight finishes under the configuration it
   * started with; the next one uses the new configuration.
   */
  reconfigure(next: BrokerConfig): Reconfiguration;
  close(): Promise<void>;
}

/** The parts built from the live part of the configuration, swapped as one on reload. */
interface LiveParts {
  readonly config: BrokerConfig;
  readonly hash: string;
  readonly issuers: TrustedIssuers;
  readonly exchange: ExchangeToken;
  readonly explain: ExplainWorkload | undefined;
}

const WARM_UP_RETRY_MS = 10_000;

/** Composition root of one broker instance. No module-level state: every call builds fresh parts. */
export function createBroker(config: BrokerConfig, options: BrokerOptions): Broker {
  const now = options.now ?? Date.now;
  const { logger, tracing } = options;
  const metrics = createMetrics(
    { signingKeysReadable: () => options.signingKeys.status?.().lastError === undefined },
    // metrics.namespaceLabel: the outcome's namespace ('' when unknown) as a label of the exchanges counter.
    { namespaceLabel: config.metrics.namespaceLabel },
  );
  // Verified subject tokens, shared by /token and /v1/explain; an issuer's entries go when its keys change.
  const verifiedTokens = new VerifiedTokenCache();
  const issuerOptions = {
    now,
    eventsFor: (issuerName: string) => ({
      onKeysChanged: () => verifiedTokens.purge(issuerName),
      onRefresh(result: 'success' | 'error', error?: unknown) {
        metrics.jwksRefresh.inc({ issuer: issuerName, result });
        if (result === 'success') metrics.jwksLastSuccess.set({ issuer: issuerName }, now() / 1000);
        else logger.warn({ issuer: issuerName, error: error instanceof Error ? error.message : String(error) }, 'issuer key set fetch failed');
      },
    }),
    wrapFetch: tracing === undefined ? undefined : (issuerName: string, fetch: IssuerFetch) => traced.tracedIssuerFetch(issuerName, fetch, tracing),
  };
  const redisConfig = config.cache.redis;
  const redis =
    redisConfig === undefined
      ? undefined
      : new RedisConnection(createRedisClient(redisConfig), redisConfig.keyPrefix, logger, {
          onStateChange: (up) => metrics.redisUp.set(up ? 1 : 0),
        });
  if (redis !== undefined) metrics.registry.registerMetric(metrics.redisUp);
  const redisCache = redis !== undefined ? new RedisTokenCache(redis) : undefined;
  const cache: TokenCache = redisCache ?? new MemoryTokenCache(config.cache.memory.maxEntries, now);
  const coordinator: MintCoordinator = redis !== undefined && redisCache !== undefined ? new RedisMintCoordinator(redis, redisCache) : new LocalMintCoordinator();
  const mintingLimit = config.limits.minting;
  const rateLimiter: MintRateLimiter = !mintingLimit.enabled
    ? unlimited
    : redis !== undefined
      ? new RedisMintRateLimiter(redis, mintingLimit, now)
      : new MemoryMintRateLimiter(mintingLimit, now);
  const auditStream =
    redis !== undefined && config.audit.redisStream !== undefined
      ? new RedisAuditStream(redis, config.audit.redisStream.key, config.audit.redisStream.maxLen)
      : undefined;

  // Key states change with files and with time alone: the set says when, and the gauges follow.
  recordSigningKeyStates(metrics, options.signingKeys);
  options.signingKeys.onChange?.(() => recordSigningKeyStates(metrics, options.signingKeys));

  const observe = createExchangeObserver({
    metrics,
    logger,
    auditStream: tracing !== undefined && auditStream !== undefined ? traced.tracedAuditStream(auditStream, tracing) : auditStream,
  });

  // Denies: static from the configuration, shared from Redis (kept current by pub/sub and a poll).
  const denies = new DenyList(staticDeniesOf(config.denies.static, now()), {
    onChange(change, deny) {
      metrics.denyChanges.inc({ change });
      logger.info({ denyId: deny.id, denyKind: denyKind(deny), change }, change === 'added' ? 'deny in force on this replica' : 'deny no longer in force on this replica');
    },
    onSnapshot(snapshot) {
      metrics.deniesActive.set({ source: 'static' }, snapshot.staticDenies.length);
      metrics.deniesActive.set({ source: 'shared' }, snapshot.sharedDenies.length);
    },
  });
  const redisDenies = redis !== undefined ? new RedisDenyStore(redis) : undefined;
  const denyStore: DenyStore = redisDenies ?? new MemoryDenyStore();
  const denySync: DenySync | undefined =
    redis !== undefined && redisDenies !== undefined
      ? startDenySync({ connection: redis, store: redisDenies, list: denies, pollMs: config.denies.pollSeconds * 1000, logger: logger.child({ component: 'denies' }) })
      : undefined;
  async function refreshDenies(): Promise<void> {
    if (denySync !== undefined) return denySync.refresh();
    const read = await denyStore.read();
    if (read !== REDIS_UNAVAILABLE) denies.replaceShared(read.denies);
  }

  // One metadata source per distinct cluster configuration (by content, so a reload that keeps a cluster block
  // keeps its source, caches and connections); closed with the broker.
  const sources = new Map<string, KubernetesMetadataSource>();
  function sourceFor(settings: NonNullable<BrokerConfig['kubernetes']>): KubernetesMetadataSource {
    const key = canonicalJson(settings);
    let source = sources.get(key);
    if (source === undefined) {
      source =
        options.kubernetesSource?.(settings) ??
        createKubernetesMetadataSource({
          connection: settings,
          cacheSeconds: settings.cacheSeconds,
          now,
          events: {
            onRequest(resource, code, seconds) {
              metrics.kubernetesRequests.inc({ resource, code });
              metrics.kubernetesDuration.observe({ resource }, seconds);
            },
          },
        });
      if (tracing !== undefined) source = traced.tracedKubernetesSource(source, tracing);
      sources.set(key, source);
    }
    return source;
  }

  /** Everything that depends on the live configuration, built from it; `previous` lends its unchanged issuers. */
  function buildLive(next: BrokerConfig, previous: LiveParts | undefined): LiveParts {
    const issuers = createTrustedIssuers(next.issuers, issuerOptions, previous?.issuers);
    const rules = compileRules(next.rules);
    const clusters = new Map<string, ClusterAccess>();
    for (const issuer of next.issuers) {
      const settings = kubernetesOf(next, issuer);
      if (settings === undefined || !settings.enabled) continue;
      clusters.set(issuer.name, { podBinding: settings.podBinding, verification: settings.verification, source: sourceFor(settings) });
    }

    // One resolver, for the exchange and for explain: an explanation judges exactly the identity an exchange would.
    const resolveWorkload = createWorkloadResolver({
      issuers,
      rules,
      clusterFor: (issuerName) => clusters.get(issuerName),
      now,
      subjectNeedsPod: subjectTemplateNeedsPod(next.tokens.subject),
      verifiedTokens,
      verify: tracing === undefined ? undefined : traced.tracedVerify(verifySubjectToken, tracing),
    });

    const resourceTargets = compileResourceTargets(next.apis, next.policies);
    const minter = next.tokens.format === 'tyk-key' && next.tyk !== undefined ? createTykKeyMinter(next.tyk, next.tokens) : createJwtMinter(options.signingKeys);
    // With tracing on, each part the exchange calls is wrapped to make its span (Redis parts only with Redis).
    const tracedRedis = tracing !== undefined && redis !== undefined;
    const untracedExchange = createExchange({
      config: next,
      resolveWorkload,
      resourceTargets,
      minter: tracing === undefined ? minter : traced.tracedMinter(minter, tracing),
      cache: tracedRedis ? traced.tracedTokenCache(cache, tracing) : cache,
      coordinator: tracedRedis ? traced.tracedMintCoordinator(coordinator, tracing) : coordinator,
      rateLimiter: tracedRedis && rateLimiter !== unlimited ? traced.tracedRateLimiter(rateLimiter, tracing) : rateLimiter,
      now,
      denies,
      recordHolder: next.tokens.format === 'tyk-key',
      onRevokedTokenSkipped: () => metrics.denyHits.inc({ kind: 'jti' }),
    });
    const exchange = tracing === undefined ? untracedExchange : tracing.exchangeInSpan(untracedExchange);

    // explain (POST /v1/explain), built only when enabled ----------------------------------------------------
    const explain = next.explain.enabled ? createWorkloadExplainer({ config: next, resolveWorkload, now }) : undefined;
    // ----------------------------------------------------------------------------------------------------------
    return { config: next, hash: configHash(next), issuers, exchange, explain };
  }

  /** Issuers a reload brought in (new or changed) before their keys loaded: they do not make the broker unready. */
  const addedByReload = new WeakSet<TrustedIssuers['all'][number]>();
  // The parts in force: one reference, replaced whole by `reconfigure`. Each request reads it once, when it starts.
  let live = buildLive(config, undefined);
  recordConfigInForce(metrics, live.hash, now());

  function reconfigure(next: BrokerConfig): Reconfiguration {
    const previous = live;
    const hash = configHash(next);
    const refused = restartOnlyChanges(previous.config, next);
    if (refused.length > 0) return { applied: false, hash, previousHash: previous.hash, refused };
    const rules = diffRuleNames(previous.config.rules, next.rules);
    live = buildLive(next, previous);
    // denies.static is live: the new list is in force from the next exchange (the shared ones are untouched).
    denies.replaceStatic(staticDeniesOf(next.denies.static, now()));
    // Verifications remembered for an issuer that is gone or changed are never used again (verifySubjectToken
    // checks the issuer in force); drop them now rather than let them age out.
    const kept = new Set(live.issuers.all);
    for (const issuer of previous.issuers.all) if (!kept.has(issuer)) verifiedTokens.purge(issuer.config.name);
    const before = new Set(previous.issuers.all);
    for (const issuer of live.issuers.all) if (!before.has(issuer) && !issuer.keys.loaded) addedByReload.add(issuer);
    recordConfigInForce(metrics, live.hash, now());
    if (live.issuers.all.some((issuer) => !issuer.keys.loaded)) void warmUp();
    return { applied: true, hash: live.hash, previousHash: previous.hash, rules };
  }

  function readiness(): ReadinessReport {
    const checks: Record<string, { ok: boolean; detail?: string }> = {};
    for (const issuer of live.issuers.all) {
      checks[`issuer:${issuer.config.name}`] = issuer.keys.loaded
        ? { ok: true }
        : addedByReload.has(issuer)
          ? // Every replica reloads the same file: an unreachable new issuer must not take the whole Service out.
            { ok: true, detail: 'added by a configuration reload; its keys have not been loaded yet (its tokens are refused until they are)' }
          : { ok: false, detail: 'the issuer\'s keys have not been loaded yet (discovery or JWKS unreachable)' };
    }
    const active = options.signingKeys.active();
    // A keys directory that cannot be re-read keeps its last good set: ready as long as that set can sign.
    const readError = options.signingKeys.status?.().lastError;
    const stale = readError === undefined ? '' : `; the keys cannot be re-read since ${new Date(readError.since).toISOString()}, the last good key set is in force`;
    checks.signingKey = active !== undefined ? { ok: true, detail: `kid ${active.kid}${stale}` } : { ok: false, detail: `no signing key${stale}` };
    if (redis !== undefined) {
      // Redis never makes the broker unready: without it, exchanges are still answered (minted, not shared).
      checks.redis = { ok: true, detail: redis.up ? 'up' : 'down: minting without the shared cache' };
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  async function warmUp(): Promise<void> {
    const pending = live.issuers.all.filter((issuer) => !issuer.keys.loaded);
    await Promise.all(pending.map((issuer) => issuer.keys.refresh().catch(() => undefined)));
    if (!closed && retryTimer === undefined && live.issuers.all.some((issuer) => !issuer.keys.loaded)) {
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        void warmUp();
      }, WARM_UP_RETRY_MS);
      retryTimer.unref();
    }
  }

  // The admin endpoint, built only when configured; `serve` gives it its own listener (admin needs a restart).
  const adminApp =
    config.admin === undefined
      ? undefined
      : createAdminApp({
          operations: {
            store: denyStore,
            logger: logger.child({ component: 'admin' }),
            auditStream,
            now,
            revokeIssued: createIssuedTokenRevoker(config, cache, logger.child({ component: 'admin' })),
            afterChange: refreshDenies,
          },
          denies,
          bearerTokenFile: config.admin.bearerTokenFile,
          requireClientCertificate: config.admin.tls !== undefined,
          logger: logger.child({ component: 'admin' }),
          now,
        });

  const app = createApp({
    // Through the parts in force at the request's start: a reload never changes an exchange already under way.
    exchange: (request, record) => live.exchange(request, record),
    signingKeys: options.signingKeys,
    publicUrl: config.server.publicUrl,
    requireClientCertificate: config.server.tls?.clientCaFile !== undefined,
    metrics,
    logger,
    readiness,
    // One record per POST /token request, ended once, from the edge: refusals before the exchange included.
    // Untraced, the record still carries the trace id of a valid incoming traceparent, for the log and audit lines.
    startExchangeRecord:
      tracing === undefined
        ? (requestId, headers) => new ExchangeRecord(requestId, observe, incomingTraceContext(headers)?.traceId)
        : (requestId, headers) => tracing.startExchangeRecord(requestId, headers, observe),
    ...(options.extraRoutes !== undefined && { extraRoutes: options.extraRoutes }),
    // explain.enabled needs a restart (the route is mounted or not); the explainer follows the live configuration.
    ...(config.explain.enabled && { explain: (request: Parameters<ExplainWorkload>[0]) => (live.explain as ExplainWorkload)(request) }),
  });

  return {
    app,
    metrics,
    get issuers() {
      return live.issuers;
    },
    cache,
    verifiedTokens,
    redis,
    denies,
    denyStore,
    refreshDenies,
    adminApp,
    readiness,
    warmUp,
    config: () => live.config,
    reconfigure,
    async close() {
      closed = true;
      await denySync?.close();
      if (retryTimer) clearTimeout(retryTimer);
      for (const source of sources.values()) source.close();
      await cache.close();
    },
  };
}
