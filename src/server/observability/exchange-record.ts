import { toBrokerError } from '../errors.js';
import { MAX_SUBJECT_TOKEN_BYTES, tokenSha256, type VerifiedSubjectToken } from '../issuers/verify-subject-token.js';
import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import type { PolicyDecision } from '../rules/evaluate-rules.js';
import type { ExchangeObserver, ExchangeOutcome } from './exchange-outcome.js';
import type { ExchangeResponse } from '../exchange/exchange-request.js';

/** The refusals whose log line explains each rule's verdict. */
const REFUSED_BY_RULES: ReadonlySet<string> = new Set(['no_matching_rule', 'scope_not_granted', 'resource_not_granted']);

/** What an exchange ended with, when it issued or served a token. */
export type ExchangeSuccess = Pick<ExchangeResponse, 'accessToken' | 'cached' | 'policies' | 'jti' | 'expiresAt' | 'expiresIn'>;

/**
 * The record of one POST /token request, from the moment it reaches the broker to its answer. Started at the
 * edge, before the body is read; each step notes what it established (the subject token, its verification, the
 * workload identity, the rules' evaluation, the cache's answer); `succeeded` or `failed` ends it, exactly once,
 * and hands one ExchangeOutcome to the observer (metrics, log, audit). A refusal at any point is recorded with
 * whatever was established before it and the real time it took.
 */
export class ExchangeRecord {
  private readonly started = performance.now();
  private subjectToken: string | undefined;
  private verified: VerifiedSubjectToken | undefined;
  private identity: WorkloadIdentity | undefined;
  private evaluation: PolicyDecision | undefined;
  private cacheResult: ExchangeOutcome['cacheResult'];
  private ended = false;

  constructor(
    readonly requestId: string,
    private readonly observe: ExchangeObserver,
    /** The W3C trace id the exchange belongs to: its span's, or a valid incoming `traceparent`'s (src/server/observability/trace-context.ts). */
    readonly traceId?: string,
  ) {}

  /** The subject token as presented: an audit record names it by SHA-256 even when it never verifies. */
  presented(subjectToken: string): void {
    this.subjectToken = subjectToken;
  }

  verifiedToken(verified: VerifiedSubjectToken): void {
    this.verified = verified;
  }

  /** The workload identity, first from the claims, then again once the cluster's API has confirmed and enriched it. */
  identified(identity: WorkloadIdentity): void {
    this.identity = identity;
  }

  evaluated(evaluation: PolicyDecision): void {
    this.evaluation = evaluation;
  }

  cacheAnswered(result: NonNullable<ExchangeOutcome['cacheResult']>): void {
    this.cacheResult = result;
  }

  succeeded(result: ExchangeSuccess): void {
    this.end({
      outcome: result.cached ? 'cached' : 'issued',
      reason: 'ok',
      policies: result.policies,
      jti: result.jti,
      expiresAt: result.expiresAt,
      ttlSeconds: result.expiresIn,
      // The access token's digest is for the audit record of an issued token, not for the cached answers.
      accessTokenSha256: result.cached ? undefined : tokenSha256(result.accessToken),
    });
  }

  failed(error: unknown): void {
    const brokerError = toBrokerError(error);
    this.end({
      outcome: brokerError.status >= 500 ? 'error' : 'rejected',
      reason: brokerError.code,
      facts: brokerError.facts,
      detail: brokerError.detail,
    });
  }

  private end(result: Pick<ExchangeOutcome, 'outcome' | 'reason' | 'policies' | 'jti' | 'expiresAt' | 'ttlSeconds' | 'accessTokenSha256' | 'facts' | 'detail'>): void {
    if (this.ended) return;
    this.ended = true;
    const { verified, identity, evaluation, subjectToken } = this;
    const argo = identity === undefined ? undefined : argoContextOf(identity);
    // One fixed shape, every field assigned (undefined when not established): object spreads here cost ~20 us
    // per exchange, more than the rest of a cached exchange's bookkeeping (bench/README.md).
    const event: ExchangeOutcome = {
      requestId: this.requestId,
      traceId: this.traceId,
      outcome: result.outcome,
      reason: result.reason,
      durationMs: performance.now() - this.started,
      subjectTokenSha256:
        verified?.sha256 ?? (subjectToken !== undefined && Buffer.byteLength(subjectToken) <= MAX_SUBJECT_TOKEN_BYTES ? tokenSha256(subjectToken) : undefined),
      // A refusal of an authentic token (expired, wrong audience) names the issuer whose key verified it.
      issuerName: verified?.issuer.config.name ?? (typeof result.facts?.issuer === 'string' ? result.facts.issuer : undefined),
      subjectTiming: verified?.timing,
      subject: identity?.subject,
      namespace: identity?.namespace,
      serviceAccount: identity?.serviceAccount,
      podName: identity?.podName,
      workflow: argo?.workflow,
      node: argo?.node,
      policies: result.policies,
      matchedRules: evaluation?.matchedRules,
      // Verdicts (one per rule) are built only to explain a refusal by the rules; most exchanges never build them.
      verdicts: evaluation !== undefined && REFUSED_BY_RULES.has(result.reason) ? evaluation.verdicts : undefined,
      jti: result.jti,
      expiresAt: result.expiresAt,
      ttlSeconds: result.ttlSeconds,
      accessTokenSha256: result.accessTokenSha256,
      cacheResult: this.cacheResult,
      facts: result.facts,
      detail: result.detail,
    };
    try {
      this.observe(event);
    } catch {
      // Side channels never change a response.
    }
  }
}
