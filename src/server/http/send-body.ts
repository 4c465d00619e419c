import type { ServerResponse } from 'node:http';

/*
 * Response bodies written on Node's own ServerResponse, so POST /token (served without Express) and the Express
 * routes answer byte for byte alike: the same Content-Type and Content-Length as Express's res.json and res.send.
 * For a HEAD request Node drops the body itself.
 */

/** Sends `value` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/** Sends a plain-text body with `status`. */
export function sendText(res: ServerResponse, status: number, text: string): void {
  send(res, status, 'text/plain; charset=utf-8', text);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body, 'utf8'));
  res.end(body);
}
