import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrokerError } from '../errors.js';
import { sendError } from './error-response.js';
import { bodyError } from './form-body.js';
import { beginRequest } from './request-context.js';
import { createTokenHandler, tokenRoutes, type StartExchangeRecord } from './token-route.js';
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
  /** Mutual TLS: POST /token needs a client certificate verified against server.tls.clientCaFile. */
  readonly requireClientCertificate?: boolean;
  readonly metrics: BrokerMetrics;
  readonly logger: Logger;
  readonly readiness: () => ReadinessReport;
  /** Starts the record of a POST /token request, which ends in one outcome for metrics, log and audit. */
  readonly startExchangeRecord: StartExchangeRecord;
  /** Extra routes mounted first: the dev-mode stand-in issuer. */
  readonly extraRoutes?: Router;
  /** POST /v1/explain; given only when `explain.enabled`, otherwise the path answers 404 like any unknown one. */
  readonly explain?: ExplainWorkload;
}

/** The broker's HTTP request listener: what `http.createServer` and supertest take. */
export interface BrokerHttpHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** The Express application behind it, which holds every route (POST /token included); for listing routes. */
  readonly express: Express;
}

const TOKEN_ROUTE = () => '/token';

/**
 * Builds the HTTP application from its dependencies; no module-level state.
 *
 * `POST /token`, nearly every request the broker serves, goes straight to its handler on Node's HTTP server;
 * everything else (and the rarer spellings of /token) goes through Express. Both paths set the same headers and
 * feed the same duration histogram.
 */
export function createApp(deps: AppDependencies): BrokerHttpHandler {
  const handleToken = createTokenHandler(deps.exchange, deps.startExchangeRecord, deps.logger, { requireClientCertificate: deps.requireClientCertificate === true });
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.use((req: Request, res: Response, next: NextFunction) => {
    res.locals.requestId = beginRequest(req, res, deps.metrics, () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      return typeof route === 'string' ? route : 'unmatched';
    });
    next();
  });

  if (deps.extraRoutes) app.use(deps.extraRoutes);
  app.use(tokenRoutes(handleToken));
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
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const known = error instanceof BrokerError ? error : bodyError(error);
    if (known === undefined) deps.logger.error({ requestId: res.locals.requestId, err: error }, 'unhandled error');
    if (res.headersSent) return;
    sendError(res, known ?? error);
  });

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'POST' && req.url === '/token') {
      handleToken(req, res, beginRequest(req, res, deps.metrics, TOKEN_ROUTE));
      return;
    }
    app(req, res);
  }
  return Object.assign(handleRequest, { express: app });
}
