import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ExchangeOutcome } from './exchange-outcome.js';

const PREFIX = 'token_broker_';

/** Every metric the broker exports, declared once. Labels come from small fixed sets only. */
export interface BrokerMetrics {
  readonly registry: Registry;
  /**
   * Labelled `issuer` (a configured issuer name, '' before a token's issuer is verified), and `namespace` too when
   * `namespaceLabel` is on (config metrics.namespaceLabel).
   */
  readonly exchanges: Counter<'outcome' | 'reason' | 'issuer' | 'namespace'>;
  readonly namespaceLabel: boolean;
  readonly subjectTokenRemaining: Histogram;
  readonly subjectTokenExpiredFor: Histogram;
  readonly clockSkew: Histogram;
  readonly issuedTokenTtl: Histogram;
  readonly cachedTokenRemaining: Histogram;
  readonly jwksRefresh: Counter<'issuer' | 'result'>;
  readonly jwksLastSuccess: Gauge<'issuer'>;
  readonly httpDuration: Histogram<'route' | 'status_class'>;
  readonly cacheRequests: Counter<'result'>;
  readonly redisUp: Gauge;
  readonly signingKeyInfo: Gauge<'kid' | 'alg' | 'state'>;
  readonly signingKeyStateChange: Gauge<'kid'>;
  readonly signingKeysReadOk: Gauge;
  readonly kubernetesRequests: Counter<'resource' | 'code'>;
  readonly kubernetesDuration: Histogram<'resource'>;
  /** Configuration reloads (SIGHUP, file change) by result; see src/server/config/config-reload.ts. */
  readonly configReloads: Counter<'result'>;
  readonly configInfo: Gauge<'hash'>;
  readonly configLoadedAt: Gauge;
  readonly configLastReloadOk: Gauge;
  /** Registered only when the broker serves TLS (server.tls). */
  readonly tlsCertificateExpiry: Gauge;
  readonly tlsCertificateNotBefore: Gauge;
  readonly tlsFilesReadOk: Gauge;
  /** Denies this replica started or stopped enforcing (change: added, removed); by every replica, so sum with care. */
  readonly denyChanges: Counter<'change'>;
  /** Exchanges refused, or cached tokens not served, because of a deny; `kind` is the facets it names (issuer+namespace). */
  readonly denyHits: Counter<'kind'>;
  /** Denies in force on this replica, by source (static, shared). */
  readonly deniesActive: Gauge<'source'>;
}

export interface MetricsSources {
  /** False while the signing keys cannot be re-read (the last good set signs); read at every scrape. */
  readonly signingKeysReadable?: () => boolean;
}

/** Creates a fresh registry with the broker's metrics and Node.js process metrics. */
export interface MetricsSettings {
  /** Adds the workload's namespace as a label of token_broker_exchanges_total; off by default (cardinality). */
  readonly namespaceLabel?: boolean;
}

export function createMetrics(sources: MetricsSources = {}, settings: MetricsSettings = {}): BrokerMetrics {
  const namespaceLabel = settings.namespaceLabel === true;
  const registry = new Registry();
  // prom-client's default names (process_*, nodejs_*), unprefixed: standard Node.js dashboards and alerts find them.
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which Prometheus reserves for counters (promtool check metrics
  // flags them); the event-loop and heap metrics cover what they would show.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const registers = [registry];
  // One call per metric below: the prefix, the registry and the label typing are set here once. A metric made with
  // `registered` false is added to the registry only when its feature is on (Redis, TLS).
  const counter = <L extends string = string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name: `${PREFIX}${name}`, help, labelNames, registers });
  const gauge = <L extends string = string>(name: string, help: string, labelNames: readonly L[] = [], registered = true) =>
    new Gauge<L>({ name: `${PREFIX}${name}`, help, labelNames, registers: registered ? registers : [] });
  const histogram = <L extends string = string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []) =>
    new Histogram<L>({ name: `${PREFIX}${name}`, help, buckets, labelNames, registers });
  return {
    registry,
    exchanges: new Counter<'outcome' | 'reason' | 'issuer' | 'namespace'>({
      name: `${PREFIX}exchanges_total`,
      help: namespaceLabel
        ? 'Token exchanges by outcome (issued, cached, rejected, error), stable reason code (ok on success), trusted issuer (empty before it is verified) and the workload\'s namespace (empty when unknown).'
        : 'Token exchanges by outcome (issued, cached, rejected, error), stable reason code (ok on success) and trusted issuer (empty before it is verified).',
      // issuer is bounded by the configuration: only names of configured issuers, never a token's `iss`.
      // namespace is declared only when enabled, so the default exposition has no namespace label at all.
      labelNames: namespaceLabel ? ['outcome', 'reason', 'issuer', 'namespace'] : ['outcome', 'reason', 'issuer'],
      registers,
    }),
    namespaceLabel,
    subjectTokenRemaining: histogram('subject_token_remaining_seconds', 'Life left on accepted subject tokens at exchange time. Low values mean steps present tokens close to expiry.', [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 43200, 86400]),
    subjectTokenExpiredFor: histogram('subject_token_expired_for_seconds', 'For expired subject tokens, how long ago they expired: seconds suggest clock skew, minutes a step caching the projected token, hours a stale secret.', [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 21600, 86400]),
    clockSkew: histogram('clock_skew_seconds', 'How far subject tokens\' iat/nbf are ahead of the broker\'s clock.', [0.5, 1, 2, 5, 10, 30, 60, 300, 900]),
    issuedTokenTtl: histogram('issued_token_ttl_seconds', 'Lifetime of newly minted access tokens.', [60, 120, 300, 600, 900, 1800, 3600, 7200, 86400]),
    cachedTokenRemaining: histogram('cached_token_remaining_seconds', 'Life left on access tokens served from the cache.', [60, 120, 300, 600, 900, 1800, 3600, 7200, 86400]),
    jwksRefresh: counter('jwks_refresh_total', 'Fetches of trusted issuers\' key sets, by issuer name and result (success, error).', ['issuer', 'result']),
    jwksLastSuccess: gauge('jwks_last_success_timestamp_seconds', 'Unix time of the last successful key-set fetch per issuer.', ['issuer']),
    httpDuration: histogram('http_request_duration_seconds', 'HTTP request duration by route template and status class.', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], ['route', 'status_class']),
    cacheRequests: counter('cache_requests_total', 'Lookups of the minted-token cache: hit, miss, stale (cached but within the refresh margin) or error (cache unavailable).', ['result']),
    redisUp: gauge('redis_up', '1 while Redis answers, 0 while the broker mints without the shared cache. Absent when no Redis is configured.', [], false),
    signingKeyInfo: gauge('signing_key_info', 'One series per signing key the broker knows, with its state (pending, active, retiring); value 1.', ['kid', 'alg', 'state']),
    kubernetesRequests: counter('kubernetes_requests_total', 'Requests to the Kubernetes API by resource (namespaces, serviceaccounts, pods, tokenreviews) and HTTP status, or error when there was none.', ['resource', 'code']),
    kubernetesDuration: histogram('kubernetes_request_duration_seconds', 'Duration of Kubernetes API requests by resource (cache hits send none).', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], ['resource']),
    configReloads: counter('config_reloads_total', 'Configuration reloads (SIGHUP or a change of the file) by result: success (in force), invalid (the file did not load or validate), refused (it changes a field that needs a restart). After invalid or refused the configuration in force stays.', ['result']),
    configInfo: gauge('config_info', 'The configuration in force, labelled with its content hash (the hash of the reload log line); one series, value 1.', ['hash']),
    configLoadedAt: gauge('config_last_reload_success_timestamp_seconds', 'Unix time at which the configuration in force was put in force: start-up, or the last successful reload.'),
    configLastReloadOk: gauge('config_last_reload_successful', '1 when the latest configuration reload (or the start-up load) succeeded; 0 while the file holds a configuration that was refused or does not validate, and an older one is in force.'),
    signingKeyStateChange: gauge('signing_key_state_change_timestamp_seconds', 'Unix time at which each signing key entered its current state.', ['kid']),
    tlsCertificateExpiry: gauge('tls_certificate_expiry_timestamp_seconds', 'Unix time at which the serving TLS certificate in force expires (its notAfter). Absent without server.tls.', [], false),
    tlsCertificateNotBefore: gauge('tls_certificate_not_before_timestamp_seconds', 'Unix time from which the serving TLS certificate in force is valid (its notBefore): with the expiry, its lifetime, so alerts can say a renewal is overdue whatever the certificate duration. Absent without server.tls.', [], false),
    tlsFilesReadOk: gauge('tls_files_read_ok', '1 when the latest read of the server.tls files formed a usable certificate and key; 0 while they cannot be used and the certificate in force is kept. Absent without server.tls.', [], false),
    denyChanges: counter('deny_changes_total', 'Denies this replica started (added) or stopped (removed) enforcing: every replica counts each change it applies.', ['change']),
    denyHits: counter('deny_hits_total', 'Exchanges refused with reason denied, and cached tokens not served because a deny revokes them, by the facets the deny names (kind, e.g. namespace or issuer+serviceAccount; jti for a revoked token).', ['kind']),
    deniesActive: gauge('denies_active', 'Denies in force on this replica, by source: static (the configuration) or shared (Redis, as last read).', ['source']),
    signingKeysReadOk: new Gauge({
      name: `${PREFIX}signing_keys_read_ok`,
      help: '1 when the latest read of signing.keysDir succeeded (always 1 for a fixed key set); 0 while reads fail and the last good key set stays in force.',
      registers,
      collect() {
        this.set(sources.signingKeysReadable?.() === false ? 0 : 1);
      },
    }),
  };
}

/** Subscribes the metrics to exchange outcomes. */
export function recordExchangeMetrics(metrics: BrokerMetrics, outcome: ExchangeOutcome): void {
  metrics.exchanges.inc(
    metrics.namespaceLabel
      ? { outcome: outcome.outcome, reason: outcome.reason, issuer: outcome.issuerName ?? '', namespace: outcome.namespace ?? '' }
      : { outcome: outcome.outcome, reason: outcome.reason, issuer: outcome.issuerName ?? '' },
  );
  if (outcome.cacheResult !== undefined) metrics.cacheRequests.inc({ result: outcome.cacheResult });
  if (outcome.reason === 'denied' && typeof outcome.facts?.denyKind === 'string') metrics.denyHits.inc({ kind: outcome.facts.denyKind });
  const timing = outcome.subjectTiming;
  if (timing !== undefined) {
    metrics.subjectTokenRemaining.observe(timing.remainingSeconds);
    if (timing.skewSeconds > 0) metrics.clockSkew.observe(timing.skewSeconds);
  }
  const facts = outcome.facts ?? {};
  if (outcome.reason === 'expired' && typeof facts.expiredForSeconds === 'number') {
    metrics.subjectTokenExpiredFor.observe(facts.expiredForSeconds);
  }
  if ((outcome.reason === 'not_yet_valid' || outcome.reason === 'issued_in_future') && typeof facts.skewSeconds === 'number') {
    metrics.clockSkew.observe(facts.skewSeconds);
  }
  if (outcome.ttlSeconds !== undefined) {
    if (outcome.outcome === 'issued') metrics.issuedTokenTtl.observe(outcome.ttlSeconds);
    if (outcome.outcome === 'cached') metrics.cachedTokenRemaining.observe(outcome.ttlSeconds);
  }
}

/**
 * After every read of server.tls's files: whether it could be used, and the validity of the certificate in
 * force. The TLS families are registered on the first call, so a broker without TLS exports none of them.
 */
export function recordServingCertificate(metrics: BrokerMetrics, readOk: boolean, inForce: { readonly notBefore: number; readonly notAfter: number }): void {
  if (metrics.registry.getSingleMetric(`${PREFIX}tls_files_read_ok`) === undefined) {
    for (const gauge of [metrics.tlsCertificateExpiry, metrics.tlsCertificateNotBefore, metrics.tlsFilesReadOk]) metrics.registry.registerMetric(gauge);
  }
  metrics.tlsFilesReadOk.set(readOk ? 1 : 0);
  metrics.tlsCertificateExpiry.set(inForce.notAfter / 1000);
  metrics.tlsCertificateNotBefore.set(inForce.notBefore / 1000);
}

/** Puts a configuration's hash and load time on the config gauges; the previous hash's series goes. */
export function recordConfigInForce(metrics: BrokerMetrics, hash: string, loadedAtMs: number): void {
  metrics.configInfo.reset();
  metrics.configInfo.set({ hash }, 1);
  metrics.configLoadedAt.set(loadedAtMs / 1000);
  metrics.configLastReloadOk.set(1);
}

/** After a configuration reload attempt: counted by result; a failed one flags that the file is not what is in force. */
export function recordConfigReload(metrics: BrokerMetrics, result: 'success' | 'invalid' | 'refused'): void {
  metrics.configReloads.inc({ result });
  if (result !== 'success') metrics.configLastReloadOk.set(0);
}
