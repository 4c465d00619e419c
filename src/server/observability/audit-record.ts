import type { ExchangeOutcome } from './exchange-outcome.js';

/** One audit record per issued token: who got what, by which rules, until when. Never the token itself. */
export interface AuditRecord {
  readonly event: 'token_issued';
  readonly requestId: string;
  /** The W3C trace id of the exchange (see ExchangeOutcome.traceId), to find its trace. */
  readonly traceId: string | undefined;
  readonly jti: string | undefined;
  readonly subject: string | undefined;
  readonly issuer: string | undefined;
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
  readonly pod: string | undefined;
  readonly workflow: string | undefined;
  readonly node: string | undefined;
  readonly policies: readonly string[] | undefined;
  readonly matchedRules: readonly string[] | undefined;
  readonly expiresAt: number | undefined;
  /** SHA-256 (base64url) of the issued access token. */
  readonly accessTokenSha256: string | undefined;
  /** SHA-256 (base64url) of the subject token it was exchanged for. */
  readonly subjectTokenSha256: string | undefined;
}

/** Builds the audit record of an issued token from its exchange outcome. */
export function auditRecordOf(outcome: ExchangeOutcome): AuditRecord {
  return {
    event: 'token_issued',
    requestId: outcome.requestId,
    traceId: outcome.traceId,
    jti: outcome.jti,
    subject: outcome.subject,
    issuer: outcome.issuerName,
    namespace: outcome.namespace,
    serviceAccount: outcome.serviceAccount,
    pod: outcome.podName,
    workflow: outcome.workflow,
    node: outcome.node,
    policies: outcome.policies,
    matchedRules: outcome.matchedRules,
    expiresAt: outcome.expiresAt,
    accessTokenSha256: outcome.accessTokenSha256,
    subjectTokenSha256: outcome.subjectTokenSha256,
  };
}
