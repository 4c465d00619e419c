import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrokerMetrics } from '../observability/metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The id of each response's request, for the routes and the error writer; gone with the response. */
const requestIds = new WeakMap<ServerResponse, string>();

/** The request id beginRequest gave this response ('' for one it never saw, which is a bug upstream). */
export function requestIdOf(res: ServerResponse): string {
  return requestIds.get(res) ?? '';
}

/**
 * What every response carries, called once per request by the broker's one door (createApp), before any route:
 * the request id (the caller's, when well-formed, else a new one), two hardening headers, and the request
 * duration histogram. `routeOf` names the route template once the response is finished: never a raw path, which a
 * client controls. Returns the request id.
 */
export function beginRequest(req: IncomingMessage, res: ServerResponse, metrics: BrokerMetrics, routeOf: () => string): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  requestIds.set(res, id);
  res.setHeader('X-Request-Id', id);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  const stopTimer = metrics.httpDuration.startTimer();
  res.once('finish', () => {
    stopTimer({ route: routeOf(), status_class: `${Math.floor(res.statusCode / 100)}xx` });
  });
  return id;
}
