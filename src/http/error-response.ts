import type { ServerResponse } from 'node:http';
import { toBrokerError } from '../errors.js';
import { sendJson } from './send-body.js';

/** RFC 6749 section 5.2 error body, plus the broker's stable reason code. */
export interface OAuthErrorBody {
  readonly error: string;
  readonly error_description: string;
  readonly reason: string;
}

/**
 * The one place errors become HTTP responses. Known errors keep their status, OAuth error and reason;
 * anything else is a bare `server_error` with no stack trace, internal path or upstream message.
 * Takes Node's ServerResponse, which Express's Response extends, so every route answers errors alike.
 */
export function sendError(res: ServerResponse, error: unknown): void {
  const brokerError = toBrokerError(error);
  const body: OAuthErrorBody = {
    error: brokerError.oauthError,
    error_description: brokerError.description,
    reason: brokerError.code,
  };
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
  if (brokerError.status === 503) res.setHeader('Retry-After', '5');
  if (brokerError.status === 429) res.setHeader('Retry-After', String(brokerError.facts.retryAfterSeconds ?? 1));
  sendJson(res, brokerError.status, body);
}
