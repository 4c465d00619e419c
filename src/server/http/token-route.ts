import accepts from 'accepts';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { BrokerError } from '../errors.js';
import { parseExchangeRequest } from './parse-exchange-request.js';
import { readFormBody } from './form-body.js';
import { answerError, sendError } from './error-response.js';
import { sendJson, sendText } from './send-body.js';
import type { ExchangeToken } from '../exchange/exchange-token.js';
import type { ExchangeRecord } from '../observability/exchange-record.js';

export { MAX_BODY_BYTES } from './form-body.js';

/**
 * Starts the record of one POST /token request (src/server/observability/exchange-record.ts); the headers carry the
 * caller's W3C trace context (`traceparent`), which the record joins.
 */
export type StartExchangeRecord = (requestId: string, headers: IncomingHttpHeaders) => ExchangeRecord;

/** Answers one request for the token endpoint (POST, or 405 for any other method); `requestId` is already on the response. */
export type TokenHandler = (req: IncomingMessage, res: ServerResponse, requestId: string) => void;

/** Whether the caller asked for the bare access token (`Accept: text/plain`) rather than the RFC 8693 JSON. */
function wantsPlainText(req: IncomingMessage): boolean {
  // No Accept, */* (curl) and application/json all negotiate to JSON: only another Accept needs negotiating.
  const accept = req.headers.accept;
  if (accept === undefined || accept === '*/*' || accept === 'application/json') return false;
  return accepts(req).type(['application/json', 'text/plain']) === 'text/plain';
}

/**
 * With mutual TLS (server.tls.clientCaFile), the handshake asks for a client certificate without requiring one,
 * so probes and Tyk's JWKS fetch connect; the token endpoint is where a certificate the CA signed is required.
 */
function hasVerifiedClientCertificate(req: IncomingMessage): boolean {
  return req.socket instanceof TLSSocket && req.socket.authorized;
}

const CLIENT_CERTIFICATE_REQUIRED = () =>
  new BrokerError('client_certificate_required', {
    oauthError: 'invalid_client',
    status: 401,
    description: 'This token endpoint requires mutual TLS: present a client certificate issued by the CA the broker trusts.',
  });

const METHOD_NOT_ALLOWED = () =>
  new BrokerError('method_not_allowed', { oauthError: 'invalid_request', status: 405, description: 'Use POST for the token endpoint.' });

export interface TokenHandlerOptions {
  /** Refuse requests whose TLS connection carries no client certificate verified against server.tls.clientCaFile. */
  readonly requireClientCertificate?: boolean;
}

/**
 * POST /token: RFC 8693 token exchange. With `Accept: text/plain` the body is the bare access token, so a
 * workflow step needs no JSON tool.
 *
 * Written against Node's request and response, not Express's: the broker's one door (createApp) hands every
 * spelling of the path straight to this handler, because Express's routing and response helpers cost more CPU per
 * request than a cached exchange does (bench/README.md). Express never sees the token endpoint.
 */
export function createTokenHandler(exchange: ExchangeToken, startRecord: StartExchangeRecord, logger: Logger, options: TokenHandlerOptions = {}): TokenHandler {
  async function answer(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, form: Readonly<Record<string, unknown>>): Promise<void> {
    const result = await exchange(parseExchangeRequest(form, req.headers.authorization), record);
    record.succeeded(result);
    if (wantsPlainText(req)) {
      sendText(res, 200, result.accessToken);
      return;
    }
    sendJson(res, 200, {
      access_token: result.accessToken,
      issued_token_type: result.issuedTokenType,
      token_type: 'Bearer',
      expires_in: result.expiresIn,
      scope: result.scope,
    });
  }

  /** Every refusal and failure of POST /token ends here: recorded once, then answered. */
  function fail(res: ServerResponse, record: ExchangeRecord, error: unknown): void {
    record.failed(error);
    answerError(res, error, logger, record.requestId);
  }

  return function handleToken(req, res, requestId) {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendError(res, METHOD_NOT_ALLOWED());
      return;
    }
    const record = startRecord(requestId, req.headers);
    // Constant headers: set before anything can answer (sendError sets them again for the refusals it writes).
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    if (options.requireClientCertificate === true && !hasVerifiedClientCertificate(req)) {
      // The body is not read: the connection closes after the answer rather than draining an unauthenticated upload.
      res.setHeader('Connection', 'close');
      fail(res, record, CLIENT_CERTIFICATE_REQUIRED());
      return;
    }
    readFormBody(req, res, (bodyError, form) => {
      if (bodyError !== undefined) {
        fail(res, record, bodyError);
        return;
      }
      answer(req, res, record, form).catch((error: unknown) => fail(res, record, error));
    });
  };
}
