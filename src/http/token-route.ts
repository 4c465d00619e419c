import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { BrokerError, invalidRequest } from '../errors.js';
import { parseExchangeRequest } from './parse-exchange-request.js';
import { sendError } from './error-response.js';
import type { ExchangeToken } from '../exchange/exchange-token.js';

/** Form bodies above this are refused with 413 before parsing. */
export const MAX_BODY_BYTES = 64 * 1024;

const parseForm = express.urlencoded({ extended: false, limit: MAX_BODY_BYTES, parameterLimit: 32 });

type RecordRefusal = (error: unknown, requestId: string) => void;

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Only form bodies are read; any other body is refused before it is buffered. */
const requireFormBody = (recordRefusal: RecordRefusal) => (req: Request, res: Response, next: NextFunction): void => {
  // Constant headers: setHeader, not res.set, which re-checks each value for a content type to complete.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
  const contentType = req.headers['content-type'];
  // req.is() is null without a body, false for a body of another type. fetch, Python requests and Node send a
  // bodiless POST (the curl-friendly Bearer form) as `Content-Length: 0` or an empty chunked body with no
  // Content-Type: that is no body, not a body of another type. The exact form type, what every client sends,
  // needs no media-type parsing.
  const noBody = contentType === undefined && (req.headers['content-length'] ?? '0') === '0';
  if (!noBody && contentType !== FORM_TYPE && req.is(FORM_TYPE) === false) {
    const error = invalidRequest('unsupported_media_type', 'The request body must be application/x-www-form-urlencoded (RFC 8693).');
    recordRefusal(error, String(res.locals.requestId ?? ''));
    sendError(res, error);
    return;
  }
  parseForm(req, res, next);
};

/**
 * POST /token: RFC 8693 token exchange. With `Accept: text/plain` the body is the bare access token, so a
 * workflow step needs no JSON tool.
 */
export function tokenRoutes(exchange: ExchangeToken, recordRefusal: RecordRefusal): Router {
  const router = express.Router();
  router.post('/token', requireFormBody(recordRefusal), async (req: Request, res: Response) => {
    const requestId = String(res.locals.requestId ?? '');
    try {
      const form = req.body !== null && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      let request;
      try {
        request = parseExchangeRequest(form, req.headers.authorization);
      } catch (error) {
        recordRefusal(error, requestId);
        throw error;
      }
      const result = await exchange(request, requestId);
      // No Accept, */* (curl) and application/json all negotiate to JSON: only another Accept needs negotiating.
      const accept = req.headers.accept;
      const wantsJson = accept === undefined || accept === '*/*' || accept === 'application/json';
      if (!wantsJson && req.accepts(['application/json', 'text/plain']) === 'text/plain') {
        res.type('text/plain').send(result.accessToken);
        return;
      }
      res.json({
        access_token: result.accessToken,
        issued_token_type: result.issuedTokenType,
        token_type: 'Bearer',
        expires_in: result.expiresIn,
        scope: result.scope,
      });
    } catch (error) {
      sendError(res, error);
    }
  });
  router.all('/token', (_req: Request, res: Response) => {
    res.set('Allow', 'POST');
    sendError(res, new BrokerError('method_not_allowed', { oauthError: 'invalid_request', status: 405, description: 'Use POST for the token endpoint.' }));
  });
  return router;
}
