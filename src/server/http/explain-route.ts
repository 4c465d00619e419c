import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { BrokerError } from '../errors.js';
import { parseExchangeRequest } from './parse-exchange-request.js';
import { answerError } from './error-response.js';
import { readFormBody } from './form-body.js';
import { requestIdOf } from './request-context.js';
import type { Logger } from 'pino';
import type { ExplainWorkload } from '../explain/explain-workload.js';

/** The same body rules as /token: a form or nothing, anything else refused before it is buffered. */
function requireFormBody(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
  readFormBody(req, res, (error, form) => {
    if (error !== undefined) {
      next(error);
      return;
    }
    req.body = form;
    next();
  });
}

/**
 * POST /v1/explain, mounted only when `explain.enabled`: the caller proves who it is with its own subject token,
 * exactly as for /token (Authorization: Bearer, or the RFC 8693 form), and gets the explanation of the decision
 * for that identity. Nothing is minted and no audit record is written; one ordinary log line says who asked.
 */
export function explainRoutes(explain: ExplainWorkload, logger: Logger): Router {
  const router = express.Router();
  router.post('/v1/explain', requireFormBody, async (req: Request, res: Response) => {
    const requestId = requestIdOf(res);
    try {
      const form = req.body !== null && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      const request = parseExchangeRequest(form, req.headers.authorization);
      const explanation = await explain({ subjectToken: request.subjectToken, scope: request.scope, resource: request.resource, audience: request.audience });
      const { identity, outcome } = explanation;
      logger.info(
        {
          requestId,
          explain: true,
          issuer: identity.issuer,
          namespace: identity.namespace,
          serviceAccount: identity.serviceAccount,
          pod: identity.pod,
          decision: outcome.decision,
          ...(outcome.decision === 'denied' && { reason: outcome.reason }),
        },
        'explain answered',
      );
      res.json(explanation);
    } catch (error) {
      // A refusal or an outage is an answer, logged as one line; a bug is logged (with its stack) by answerError.
      if (error instanceof BrokerError) {
        const line = { requestId, explain: true, reason: error.code, ...(error.detail !== undefined && { detail: error.detail }) };
        if (error.status >= 500) logger.error(line, 'explain failed');
        else logger.info(line, 'explain refused');
      }
      answerError(res, error, logger, requestId);
    }
  });
  return router;
}
