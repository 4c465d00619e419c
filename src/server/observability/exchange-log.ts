import type { Logger } from 'pino';
import { auditRecordOf } from './audit-record.js';
import type { ExchangeOutcome } from './exchange-outcome.js';
import { REDACTED_FIELDS, REDACTION_CENSOR } from './log-redaction.js';

/**
 * The logger for exchange and audit lines: the given one, with redaction of top-level fields only. These lines are
 * built field by field below, from names none of which is a credential, so the root logger's wildcard paths
 * (`*.token`) would find nothing in them; pino's wildcard redaction copies every nested object of every line to
 * look, which cost 6 to 15 us per line, twice per minted token (bench/README.md). Any other line keeps the root's.
 */
export function exchangeLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: [...REDACTED_FIELDS], censor: REDACTION_CENSOR } });
}

/**
 * One log line per exchange, and one audit line per issued token. Neither ever contains a token: the
 * subject and access tokens appear only as SHA-256 digests.
 */
export function logExchange(logger: Logger, outcome: ExchangeOutcome): void {
  const line = {
    requestId: outcome.requestId,
    traceId: outcome.traceId,
    outcome: outcome.outcome,
    reason: outcome.reason,
    issuer: outcome.issuerName,
    namespace: outcome.namespace,
    serviceAccount: outcome.serviceAccount,
    pod: outcome.podName,
    workflow: outcome.workflow,
    node: outcome.node,
    policies: outcome.policies,
    jti: outcome.jti,
    expiresAt: outcome.expiresAt,
    durationMs: Math.round(outcome.durationMs * 100) / 100,
    subjectTokenSha256: outcome.subjectTokenSha256,
    // Undefined fields are left out of the line by pino; a fixed shape is cheaper to build than spreads.
    facts: outcome.facts !== undefined && Object.keys(outcome.facts).length > 0 ? outcome.facts : undefined,
    detail: outcome.detail,
    // Which rules were considered and why each did not match: for the operator, never in the response.
    verdicts: outcome.reason === 'no_matching_rule' || outcome.reason === 'scope_not_granted' || outcome.reason === 'resource_not_granted' ? outcome.verdicts : undefined,
  };
  if (outcome.outcome === 'error') logger.error(line, 'exchange failed');
  else if (outcome.outcome === 'rejected') logger.info(line, 'exchange rejected');
  else logger.info(line, 'exchange succeeded');

  if (outcome.outcome === 'issued') logger.info({ audit: true, ...auditRecordOf(outcome) }, 'token issued');
}
