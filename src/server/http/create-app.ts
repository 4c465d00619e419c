import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrokerError } from '../errors.js';
import { answerError, sendError } from './error-response.js';
import { bodyError } from './form-body.js';
import { beginRequest, requestIdOf } from './request-context.js';
import { createTokenHandler, type StartExchangeRecord } from './token-route.js';
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
  /** The Express application behind the door: every route but the token endpoint; for listing routes. */
  readonly express: Express;
  /** The routes the door answers itself, before Express: `POST /token`, and `ALL /token` (405 with Allow). */
  readonly doorRoutes: readonly string[];
}

const TOKEN_ROUTE = () => '/token';

/**
 * Whether a request target names the token endpoint, as Express would match a route (case-insensitive, one
 * optional trailing slash, any query): `/token`, `/TOKEN`, `/token/`, `/token?x`. The exact spelling, nearly every
 * request, is answered without parsing anything.
 */
export function isTokenPath(url: string | undefined): boolean {
  if (url === '/token') return true;
  if (url === undefined) return false;
  const query = url.indexOf('?');
  let path = query < 0 ? url : url.slice(0, query);
  if (path.endsWith('/')) path = path.slice(0, -1);
  return path.length === 6 && path.toLowerCase() === '/token';
}

/**
 * Builds the HTTP application from its dependencies; no module-level state.
 *
 * One door for every request (`handleRequest` below): it starts the request context (id, hardening headers,
 * duration histogram) once, then the path decides, once, where the request goes. The token endpoint, nearly every
 * request the broker serves, goes to its handler on Node's HTTP server, and only there; everything else goes to
 * Express. Errors on both sides are written by answerError.
 */
export function createApp(deps: AppDependencies): BrokerHttpHandler {
  const handleToken = createTokenHandler(deps.exchange, deps.startExchangeRecord, deps.logger, { requireClientCertificate: deps.requireClientCertificate === true });
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  if (deps.extraRoutes) app.use(deps.extraRoutes);
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
    // A body-parser failure on an Express route (the dev-mode routes' JSON bodies) is the client's, with its status.
    answerError(res, error instanceof BrokerError ? error : (bodyError(error) ?? error), deps.logger, requestIdOf(res));
  });

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    if (isTokenPath(req.url)) {
      handleToken(req, res, beginRequest(req, res, deps.metrics, TOKEN_ROUTE));
      return;
    }
    // Express sets req.route on this same request object when a route matches: the histogram reads it at the end.
    beginRequest(req, res, deps.metrics, () => {
      const route = (req as IncomingMessage & { route?: { path?: unknown } }).route?.path;
      return typeof route === 'string' ? route : 'unmatched';
    });
    app(req, res);
  }
  return Object.assign(handleRequest, { express: app, doorRoutes: ['POST /token', 'ALL /token'] as const });
}
