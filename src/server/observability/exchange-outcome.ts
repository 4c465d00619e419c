import type { ReasonCode } from '../errors.js';
import type { RuleVerdict } from '../rules/evaluate-rules.js';
import type { TokenTiming } from '../issuers/temporal-claims.js';

export type ExchangeOutcomeKind = 'issued' | 'cached' | 'rejected' | 'error';

/**
 * Everything known about one POST /token request when it ends, emitted exactly once by its ExchangeRecord. Metrics, logs
 * and audit subscribe to it. It never carries a token: only the subject token's SHA-256.
 */
export interface ExchangeOutcome {
  readonly requestId: string;
  /** The W3C trace id (32 hex digits) of the exchange, when it is traced or the caller sent a valid `traceparent`. */
  readonly traceId?: string | undefined;
  readonly outcome: ExchangeOutcomeKind;
  /** `ok` for issued and cached; the reason code otherwise. */
  readonly reason: ReasonCode | 'ok';
  readonly durationMs: number;
  readonly subjectTokenSha256?: string;
  readonly issuerName?: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly podName?: string;
  /** Argo workflow run and node of the pod, when known. */
  readonly workflow?: string;
  readonly node?: string;
  readonly subject?: string;
  readonly policies?: readonly string[];
  readonly matchedRules?: readonly string[];
  /** Why each rule did or did not match: only on `no_matching_rule`, `scope_not_granted` and `resource_not_granted`, logged, never sent to the client. */
  readonly verdicts?: readonly RuleVerdict[];
  readonly jti?: string;
  readonly expiresAt?: number;
  readonly ttlSeconds?: number;
  /** For an issued (minted) access token only: its SHA-256, for the audit record. */
  readonly accessTokenSha256?: string;
  readonly subjectTiming?: TokenTiming;
  /** What the token cache answered, when it was asked. */
  readonly cacheResult?: 'hit' | 'miss' | 'stale' | 'error';
  /** Non-secret facts from a rejection (e.g. expiredForSeconds, skewSeconds). */
  readonly facts?: Readonly<Record<string, string | number | boolean>>;
  /** Internal detail of a rejection or failure, for logs only. */
  readonly detail?: string;
}

/** A subscriber to exchange outcomes. It must not throw; if it does, the error is swallowed and logged. */
export type ExchangeObserver = (outcome: ExchangeOutcome) => void;
