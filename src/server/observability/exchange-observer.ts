import type { Logger } from 'pino';
import { auditRecordOf } from './audit-record.js';
import type { RedisAuditStream } from './audit-stream.js';
import { exchangeLogger, logExchange } from './exchange-log.js';
import type { ExchangeOutcome } from './exchange-outcome.js';
import { recordExchangeMetrics, type BrokerMetrics } from './metrics.js';

/**
 * Where an ended ExchangeRecord goes, once per request: the metrics, the exchange log line, and for an issued token
 * the audit record on the Redis stream when one is configured. The log line carries the audit record too, so a
 * failed stream write loses nothing; it is only worth a warning.
 */
export function createExchangeObserver(options: {
  readonly metrics: BrokerMetrics;
  readonly logger: Logger;
  readonly auditStream?: Pick<RedisAuditStream, 'append'> | undefined;
}): (outcome: ExchangeOutcome) => void {
  const { metrics, logger, auditStream } = options;
  const lines = exchangeLogger(logger);
  return (outcome) => {
    recordExchangeMetrics(metrics, outcome);
    logExchange(lines, outcome);
    if (outcome.outcome === 'issued' && auditStream !== undefined) {
      void auditStream.append(auditRecordOf(outcome)).then((ok) => {
        if (!ok) logger.warn({ requestId: outcome.requestId, jti: outcome.jti }, 'audit record not streamed to Redis (it is in the log)');
      });
    }
  };
}
