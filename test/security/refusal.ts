import assert from 'node:assert/strict';
import { MemoryTokenCache } from '../../src/server/cache/memory-token-cache.js';
import type { ReasonCode } from '../../src/server/errors.js';
import type { Harness } from '../support/broker-harness.js';

/** What a refusal must be, exactly. */
export interface ExpectedRefusal {
  readonly status: number;
  readonly error: string;
  readonly reason: ReasonCode;
  /** The exact error_description, or a pattern it must match. */
  readonly description?: string | RegExp;
}

/** What the checks read of a response: supertest's Response, or `fromFetch` of a fetch Response. */
export interface HttpResult {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: any; // JSON of any shape, as supertest types it
  readonly text: string;
}

/** A fetch Response in the shape of supertest's, for requests supertest cannot send (raw compressed bodies). */
export async function fromFetch(response: globalThis.Response): Promise<HttpResult> {
  const text = await response.text();
  let body: unknown = {};
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the checks on the body will fail and show the text
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  return { status: response.status, headers, body, text };
}

/** The harness broker's in-process token cache (the harness configures no Redis). */
export function memoryCache(h: Harness): MemoryTokenCache {
  const cache = h.broker.cache;
  assert.ok(cache instanceof MemoryTokenCache, 'the harness broker uses the in-process cache');
  return cache;
}

/** How many audit records (one per minted token) the harness has logged. */
export function auditCount(h: Harness): number {
  return h.logs.lines.filter((line) => line.audit === true).length;
}

/** Absolute paths of this checkout and stack frames: neither may appear in a response body. */
const INTERNALS = [/\/work\//, /node_modules/, /\bat [\w.<>]+ \(/, /\.ts:\d+/, /\.js:\d+/, /Error: /];

/** Asserts the error body is exactly {error, error_description, reason} with nothing internal in it. */
export function assertErrorShape(res: HttpResult, expected: ExpectedRefusal): void {
  assert.equal(res.status, expected.status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json; charset=utf-8$/);
  assert.deepEqual(Object.keys(res.body as object), ['error', 'error_description', 'reason']);
  assert.equal(res.body.error, expected.error);
  assert.equal(res.body.reason, expected.reason);
  const description = res.body.error_description as unknown;
  assert.equal(typeof description, 'string');
  if (typeof expected.description === 'string') assert.equal(description, expected.description);
  else if (expected.description !== undefined) assert.match(String(description), expected.description);
  for (const pattern of INTERNALS) assert.doesNotMatch(res.text, pattern);
  assert.equal(res.headers['x-powered-by'], undefined);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['cache-control'], 'no-store');
}

/**
 * Sends one request and checks that it was refused exactly as expected and that nothing was minted: no audit
 * record, no new cache entry, and one exchange log line with the refusal's outcome and reason.
 */
export async function expectRefusal(h: Harness, send: () => PromiseLike<HttpResult>, expected: ExpectedRefusal): Promise<HttpResult> {
  const cache = memoryCache(h);
  const cacheBefore = cache.size;
  const auditsBefore = auditCount(h);
  const linesBefore = h.logs.lines.length;
  const res = await send();
  assertErrorShape(res, expected);
  assert.equal(auditCount(h), auditsBefore, 'no audit record: nothing was minted');
  assert.equal(cache.size, cacheBefore, 'no cache entry was written');
  const outcomes = h.logs.lines.slice(linesBefore).filter((line) => typeof line.outcome === 'string');
  assert.deepEqual(
    outcomes.map((line) => [line.outcome, line.reason]),
    [[expected.status >= 500 ? 'error' : 'rejected', expected.reason]],
    'one exchange outcome is logged, with the refusal\'s reason',
  );
  return res;
}

/** Sends one request and checks that a token was minted for it: 200, one audit record, one more cache entry. */
export async function expectMinted(h: Harness, send: () => PromiseLike<HttpResult>): Promise<HttpResult> {
  const cache = memoryCache(h);
  const cacheBefore = cache.size;
  const auditsBefore = auditCount(h);
  const res = await send();
  assert.equal(res.status, 200, res.text);
  assert.equal(typeof res.body.access_token, 'string');
  assert.equal(auditCount(h), auditsBefore + 1, 'one audit record for the minted token');
  assert.equal(cache.size, cacheBefore + 1, 'the minted token is cached');
  return res;
}
