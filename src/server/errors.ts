import type { OAuthErrorCode } from './protocol.js';

/**
 * Stable reason codes. Clients, metrics, alerts and runbooks key on these strings:
 * add new ones, never rename or reuse one.
 */
export const REASON_CODES = [
  // the request itself
  'invalid_request',
  'unsupported_grant_type',
  'unsupported_token_type',
  'request_too_large',
  'unsupported_media_type',
  'client_certificate_required',
  // the subject token
  'malformed_token',
  'token_too_large',
  'unsupported_algorithm',
  'unknown_kid',
  'bad_signature',
  'unknown_issuer',
  'audience_mismatch',
  'expired',
  'not_yet_valid',
  'issued_in_future',
  'missing_claim',
  'legacy_token',
  // the workload, as the cluster's API sees it
  'not_pod_bound',
  'pod_not_found',
  'pod_uid_mismatch',
  'pod_terminating',
  'workflow_completed',
  'pod_finished',
  'token_review_rejected',
  'service_account_not_found',
  'service_account_uid_mismatch',
  // policy
  'no_matching_rule',
  'scope_not_granted',
  'audience_not_allowed',
  'malformed_resource',
  'unknown_resource',
  'resource_not_granted',
  'rate_limited',
  // an operator's deny (token-broker deny add, the admin endpoint, denies.static)
  'denied',
  // dependencies and the broker itself
  'issuer_unavailable',
  'kubernetes_unavailable',
  'kubernetes_forbidden',
  'no_signing_key',
  'tyk_unavailable',
  'not_found',
  'method_not_allowed',
  'internal_error',
] as const;

export type ReasonCode = (typeof REASON_CODES)[number];

export interface BrokerErrorOptions {
  /** RFC 6749 error code sent to the client. */
  readonly oauthError: OAuthErrorCode;
  /** HTTP status sent to the client. */
  readonly status: number;
  /** Safe to show the caller: about the caller's own request or token, never about rules or internals. */
  readonly description: string;
  /** For logs and audit only: may name rules, patterns and upstream failures; never a token. */
  readonly detail?: string;
  /** Extra structured, non-secret facts for logs and metrics (e.g. how long ago a token expired). */
  readonly facts?: Readonly<Record<string, string | number | boolean>>;
  readonly cause?: unknown;
}

/** The one error type the broker throws on purpose. Everything else is a bug and becomes `server_error`. */
export class BrokerError extends Error {
  readonly code: ReasonCode;
  readonly oauthError: OAuthErrorCode;
  readonly status: number;
  readonly description: string;
  readonly detail: string | undefined;
  readonly facts: Readonly<Record<string, string | number | boolean>>;

  constructor(code: ReasonCode, options: BrokerErrorOptions) {
    super(options.description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.oauthError = options.oauthError;
    this.status = options.status;
    this.description = options.description;
    this.detail = options.detail;
    this.facts = options.facts ?? {};
  }
}

type Extra = Omit<BrokerErrorOptions, 'oauthError' | 'status' | 'description'>;

/** A malformed request or an unacceptable subject token: 400 invalid_request (RFC 8693 section 2.2.2). */
export function invalidRequest(code: ReasonCode, description: string, extra: Extra = {}): BrokerError {
  return new BrokerError(code, { oauthError: 'invalid_request', status: 400, description, ...extra });
}

/** A requested audience, scope or resource the broker will not issue for: 400 invalid_target (RFC 8693, RFC 8707). */
export function invalidTarget(code: ReasonCode, description: string, extra: Extra = {}): BrokerError {
  return new BrokerError(code, { oauthError: 'invalid_target', status: 400, description, ...extra });
}

/** A dependency the broker needs is down: 503 temporarily_unavailable; never a token on unverified input. */
export function temporarilyUnavailable(code: ReasonCode, description: string, extra: Extra = {}): BrokerError {
  return new BrokerError(code, { oauthError: 'temporarily_unavailable', status: 503, description, ...extra });
}

/**
 * The broker's own deployment is wrong (say, its RBAC): 500 server_error. Retrying will not help, so it must not
 * read as an outage (503); the detail names what to fix and reaches only logs.
 */
export function brokerMisconfigured(code: ReasonCode, description: string, extra: Extra = {}): BrokerError {
  return new BrokerError(code, { oauthError: 'server_error', status: 500, description, ...extra });
}

/**
 * The same refusal, also naming the trusted issuer whose key verified the token (facts.issuer): a timing or
 * audience refusal of an authentic token is still that issuer's, and metrics and logs say so.
 */
export function refusalOfIssuer(error: unknown, issuerName: string): unknown {
  if (!(error instanceof BrokerError)) return error;
  return new BrokerError(error.code, {
    oauthError: error.oauthError,
    status: error.status,
    description: error.description,
    ...(error.detail !== undefined && { detail: error.detail }),
    facts: { ...error.facts, issuer: issuerName },
  });
}

/** Wraps anything unexpected so that it reaches the client as a bare `server_error`. */
export function toBrokerError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError('internal_error', {
    oauthError: 'server_error',
    status: 500,
    description: 'The token broker failed unexpectedly; retry, and report it if it persists.',
    detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    cause: error,
  });
}
