import type { Response } from 'express';
import { toBrokerError } from '../errors.js';

/** RFC 6749 section 5.2 error body, plus the broker's stable reason code. */
export interface OAuthErrorBody {
  readonly error: string;
  readonly error_description: string;
  readonly reason: string;
}

/**
 * The one place errors become HTTP responses. Known errors keep their status, OAuth error and reason;
 * anything else is a bare `server_error` with no stack trace, internal path or upstream message.
 */
export function sendError(res: Response, error: unknown): void {
  const brokerError = toBrokerError(error);
  const body: OAuthErrorBody = {
    error: brokerError.oauthError,
    error_description: brokerError.description,
    reason: brokerError.code,
  };
  res.status(brokerError.status);
  res.set('Cache-Control', 'no-store');
  res.set('Pragma', 'no-cache');
  if (brokerError.status === 503) res.set('Retry-After', '5');
  if (brokerError.status === 429) res.set('Retry-After', String(brokerError.facts.retryAfterSeconds ?? 1));
  res.json(body);
}
