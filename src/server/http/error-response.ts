import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { BrokerError, toBrokerError } from '../errors.js';
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

/**
 * Every route's last word on an error, and the one "expected or bug" decision: a BrokerError is an answer the
 * broker meant to give; anything else is a bug, logged once with its stack here (never sent) and answered as a
 * bare server_error. A response already started is left alone.
 */
export function answerError(res: ServerResponse, error: unknown, logger: Logger, requestId: string): void {
  if (!(error instanceof BrokerError)) logger.error({ requestId, err: error }, 'unhandled error');
  if (!res.headersSent) sendError(res, error);
}
