import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrokerMetrics } from '../observability/metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * What every response carries, for /token (served on Node's HTTP server directly) and for the Express routes
 * alike: the request id (the caller's, when well-formed, else a new one), two hardening headers, and the request
 * duration histogram. `routeOf` names the route template once the response is finished: never a raw path, which a
 * client controls. Returns the request id.
 */
export function beginRequest(req: IncomingMessage, res: ServerResponse, metrics: BrokerMetrics, routeOf: () => string): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  const stopTimer = metrics.httpDuration.startTimer();
  res.once('finish', () => {
    stopTimer({ route: routeOf(), status_class: `${Math.floor(res.statusCode / 100)}xx` });
  });
  return id;
}
