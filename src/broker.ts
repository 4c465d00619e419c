import type { Express, Router } from 'express';
import type { Logger } from 'pino';
import { createApp } from './http/create-app.js';
import { createExchange } from './exchange/exchange-token.js';
import { createTrustedIssuers, type TrustedIssuers } from './issuers/trusted-issuers.js';
import { compileRules } from './rules/compiled-rules.js';
import { MemoryTokenCache } from './cache/memory-token-cache.js';
import { createMetrics, recordExchangeMetrics, type BrokerMetrics } from './observability/metrics.js';
import { logExchange } from './observability/exchange-log.js';
import type { BrokerConfig } from './config/schema.js';
import type { SigningKeySet } from './mint/signing-key-set.js';
import type { ReadinessReport } from './http/health-routes.js';
import type { TokenCache } from './cache/token-cache.js';

export interface BrokerOptions {
  readonly logger: Logger;
  readonly signingKeys: SigningKeySet;
  readonly now?: () => number;
  readonly cache?: TokenCache;
  readonly extraRoutes?: Router;
}

/** The broker assembled from its parts: what `serve` runs and what HTTP tests drive through supertest. */
export interface Broker {
  readonly app: Express;
  readonly metrics: BrokerMetrics;
  readonly issuers: TrustedIssuers;
  readonly cache: TokenCache;
  readiness(): ReadinessReport;
  /** Loads every issuer's keys now, and keeps retrying the ones that fail until they load. */
  warmUp(): Promise<void>;
  close(): Promise<void>;
}

const WARM_UP_RETRY_MS = 10_000;

/** Composition root of one broker instance. No module-level state: every call builds fresh parts. */
export function createBroker(config: BrokerConfig, options: BrokerOptions): Broker {
  const now = options.now ?? Date.now;
  const { logger } = options;
  const metrics = createMetrics();
  const issuers = createTrustedIssuers(config.issuers, {
    now,
    eventsFor: (issuerName) => ({
      onRefresh(result, error) {
        metrics.jwksRefresh.inc({ issuer: issuerName, result });
        if (result === 'success') metrics.jwksLastSuccess.set({ issuer: issuerName }, now() / 1000);
        else logger.warn({ issuer: issuerName, error: error instanceof Error ? error.message : String(error) }, 'issuer key set fetch failed');
      },
    }),
  });
  const rules = compileRules(config.rules);
  const cache = options.cache ?? new MemoryTokenCache(config.cache.memory.maxEntries, now);
  const exchange = createExchange({
    config,
    issuers,
    rules: () => rules,
    signingKeys: options.signingKeys,
    cache,
    now,
    observe(outcome) {
      recordExchangeMetrics(metrics, outcome);
      logExchange(logger, outcome);
    },
  });

  function readiness(): ReadinessReport {
    const checks: Record<string, { ok: boolean; detail?: string }> = {};
    for (const issuer of issuers.all) {
      checks[`issuer:${issuer.config.name}`] = issuer.keys.loaded
        ? { ok: true }
        : { ok: false, detail: 'the issuer\'s keys have not been loaded yet (discovery or JWKS unreachable)' };
    }
    const active = options.signingKeys.active();
    checks.signingKey = active !== undefined ? { ok: true, detail: `kid ${active.kid}` } : { ok: false, detail: 'no signing key' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  async function warmUp(): Promise<void> {
    const pending = issuers.all.filter((issuer) => !issuer.keys.loaded);
    await Promise.all(pending.map((issuer) => issuer.keys.refresh().catch(() => undefined)));
    if (!closed && issuers.all.some((issuer) => !issuer.keys.loaded)) {
      retryTimer = setTimeout(() => void warmUp(), WARM_UP_RETRY_MS);
      retryTimer.unref();
    }
  }

  const app = createApp({
    exchange,
    signingKeys: options.signingKeys,
    publicUrl: config.server.publicUrl,
    metrics,
    logger,
    readiness,
    ...(options.extraRoutes !== undefined && { extraRoutes: options.extraRoutes }),
  });

  return {
    app,
    metrics,
    issuers,
    cache,
    readiness,
    warmUp,
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await cache.close();
    },
  };
}
