/**
 * The bench's baseline: a bare Express 5 app configured like the broker's (same app settings, same form parser
 * and limits, same http.Server options through src/server/http/serve-http.ts) whose POST /token parses the same form
 * body and answers a fixed JSON. Its req/s is the ceiling the broker's ratios are measured against: what Express
 * and Node's HTTP stack cost on this machine, before any token work.
 *
 * Run as a child process by bench/run.ts: `node --import tsx bench/baseline-app.ts PORT`; prints "listening PORT".
 */
import express from 'express';
import { listen } from '../src/server/http/serve-http.js';
import { MAX_BODY_BYTES } from '../src/server/http/token-route.js';

const FIXED = {
  access_token: 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImJlbmNoIiwidHlwIjoiSldUIn0.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl',
  issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
  token_type: 'Bearer',
  expires_in: 600,
  scope: 'payments-read payments-write status-read',
};

const port = Number(process.argv[2] ?? '0');
const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.set('query parser', 'simple');
app.post('/token', express.urlencoded({ extended: false, limit: MAX_BODY_BYTES, parameterLimit: 32 }), (req, res) => {
  // Touch the parsed field so the parse cannot be skipped by a lazy body; the answer is fixed.
  const form = req.body as Record<string, unknown> | undefined;
  if (typeof form?.subject_token !== 'string') {
    res.status(400).json({ error: 'invalid_request' });
    return;
  }
  res.json(FIXED);
});

const server = await listen(app, { port, host: '127.0.0.1', headersTimeoutSeconds: 10, requestTimeoutSeconds: 30 });
console.log(`listening ${server.port}`);
process.once('SIGTERM', () => {
  void server.shutdown(2).then(() => {
    process.exitCode = 0;
  });
});
