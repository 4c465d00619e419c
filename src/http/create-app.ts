import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { BrokerError, invalidRequest } from '../errors.js';
import { sendError } from './error-response.js';
import { tokenRoutes } from './token-route.js';
import { explainRoutes } from './explain-route.js';
import { wellKnownRoutes } from './well-known-routes.js';
import { healthRoutes, type ReadinessReport } from './health-routes.js';
import type { Logger } from 'pino';
import type { ExchangeToken } from '../exchange/exchange-token.js';
import type { ExplainWorkload } from '../explain/explain-workload.js';
import type { SigningKeySet } from '../mint/signing-key-set.js';
import type { BrokerMetrics } from '../observability/metrics.js';

export interface AppDependencies {
  readonly exchange: ExchangeToken;
  readonly signingKeys: SigningKeySet;
  readonly publicUrl: string;
  readonly metrics: BrokerMetrics;
  readonly logger: Logger;
  readonly readiness: () => ReadinessReport;
  /** Counts and logs a /token request refused before it became an exchange. */
  readonly recordRefusal: (error: unknown, requestId: string) => void;
  /** Extra routes mounted first: the dev-mode stand-in issuer. */
  readonly extraRoutes?: Router;
  /** POST /v1/explain; given only when `explain.enabled`, otherwise the path answers 404 like any unknown one. */
  readonly explain?: ExplainWorkload;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Body-parser failures carry a `type`; map them to precise client errors. */
function bodyError(error: unknown): BrokerError | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  if (!('type' in error)) {
    // A compressed body that does not decompress: body-parser passes zlib's error on as an exposed 400 without a type.
    const { status, expose } = error as { status?: unknown; expose?: unknown };
    const clientError = typeof status === 'number' && status >= 400 && status < 500 && expose === true;
    return clientError ? invalidRequest('invalid_request', 'The request body could not be decoded as a form.') : undefined;
  }
  const type = String((error as { type: unknown }).type);
  if (type === 'entity.too.large' || type === 'parameters.too.many') {
    return new BrokerError('request_too_large', {
      oauthError: 'invalid_request',
      status: 413,
      description: 'The request body is too large (at most 64 KiB and 32 parameters).',
    });
  }
  if (type === 'request.aborted' || type === 'request.size.invalid') return invalidRequest('invalid_request', 'The request body was incomplete.');
  return invalidRequest('invalid_request', 'The request body could not be decoded as a form.');
}

/** Builds the HTTP application from its dependencies; no module-level state. */
export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.set('X-Request-Id', id);
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Referrer-Policy', 'no-referrer');
    const stopTimer = deps.metrics.httpDuration.startTimer();
    res.on('finish', () => {
      // Route templates only: never a raw path, which a client controls.
      const route = (req.route as { path?: string } | undefined)?.path;
      stopTimer({ route: typeof route === 'string' ? route : 'unmatched', status_class: `${Math.floor(res.statusCode / 100)}xx` });
    });
    next();
  });

  if (deps.extraRoutes) app.use(deps.extraRoutes);
  app.use(tokenRoutes(deps.exchange, deps.recordRefusal));
  if (deps.explain) app.use(explainRoutes(deps.explain, deps.logger));
  app.use(wellKnownRoutes(deps.publicUrl, deps.signingKeys));
  app.use(healthRoutes(deps.readiness));
  app.get('/metrics', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.use((_req: Request, res: Response) => {
    sendError(res, new BrokerError('not_found', { oauthError: 'invalid_request', status: 404, description: 'No such endpoint.' }));
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const known = bodyError(error);
    if (known === undefined) deps.logger.error({ requestId: res.locals.requestId, err: error }, 'unhandled error');
    if (req.path === '/token') deps.recordRefusal(known ?? error, String(res.locals.requestId ?? ''));
    if (res.headersSent) return;
    sendError(res, known ?? error);
  });
  return app;
}
