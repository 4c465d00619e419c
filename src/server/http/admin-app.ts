import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { TLSSocket } from 'node:tls';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { addDeny, removeDeny, type DenyOperations } from '../deny/deny-operations.js';
import type { DenyList } from '../deny/deny-list.js';
import { isDenyId, sanitizeReason, type Deny } from '../deny/deny.js';

/** The admin API's paths, for the public listener's tests and the OpenAPI document. */
export const ADMIN_DENIES_PATH = '/admin/v1/denies';

/** The shortest admin secret accepted: a guessable one would make the kill switch anyone's. */
export const MIN_ADMIN_SECRET_LENGTH = 32;

export interface AdminDependencies {
  readonly operations: DenyOperations;
  readonly denies: DenyList;
  /** File holding the bearer secret; re-read on each request, so a rotated Secret applies without a restart. */
  readonly bearerTokenFile?: string | undefined;
  /** Mutual TLS (config admin.tls): every request needs a client certificate the configured CA signed. */
  readonly requireClientCertificate?: boolean;
  readonly logger: Logger;
  readonly now: () => number;
}

/** A deny as the admin API shows it: times in RFC 3339, and where it comes from. */
export function adminDenyJson(deny: Deny, source: 'static' | 'shared'): Record<string, unknown> {
  return {
    id: deny.id,
    source,
    match: deny.match,
    until: deny.until === undefined ? null : new Date(deny.until).toISOString(),
    reason: deny.reason,
    createdAt: new Date(deny.createdAt).toISOString(),
    createdBy: deny.createdBy,
  };
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

function fail(res: Response, status: number, error: string, description: string, extra: Record<string, unknown> = {}): void {
  res.status(status).set('Cache-Control', 'no-store').json({ error, error_description: description, ...extra });
}

/**
 * The admin listener's application: list, add and remove denies (JSON), behind a bearer secret compared in constant
 * time. Served only on its own port (config `admin`); the public application has none of these routes.
 */
export function createAdminApp(deps: AdminDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    // The same request id rule as the public listener: the caller's when well-formed, else a fresh one.
    const incoming = req.headers['x-request-id'];
    res.set('X-Request-Id', typeof incoming === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(incoming) ? incoming : randomUUID());
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  });

  // Every request must present the configured credentials: the listener says nothing to strangers.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (deps.requireClientCertificate === true && !(req.socket instanceof TLSSocket && req.socket.authorized)) {
      deps.logger.warn({ path: req.path.slice(0, 100) }, 'admin request refused: no client certificate from admin.tls.clientCaFile');
      fail(res, 401, 'unauthorized', 'A client certificate from the admin CA is required.');
      return;
    }
    next();
  });
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    if (deps.bearerTokenFile === undefined) {
      next();
      return;
    }
    let secret: string;
    try {
      secret = (await readFile(deps.bearerTokenFile, 'utf8')).trim();
    } catch (error) {
      deps.logger.error({ code: (error as NodeJS.ErrnoException).code }, 'cannot read admin.bearerTokenFile: the admin endpoint refuses every request');
      fail(res, 503, 'admin_unavailable', 'The admin secret cannot be read.');
      return;
    }
    if (secret.length < MIN_ADMIN_SECRET_LENGTH) {
      deps.logger.error({ length: secret.length }, `admin.bearerTokenFile holds fewer than ${MIN_ADMIN_SECRET_LENGTH} characters: the admin endpoint refuses every request`);
      fail(res, 503, 'admin_unavailable', 'The admin secret is unusable.');
      return;
    }
    const header = req.headers.authorization ?? '';
    // The scheme is case-insensitive (RFC 7235); the secret is compared exactly.
    const presented = /^bearer /i.test(header) ? header.slice('Bearer '.length) : '';
    // Digests have one length whatever was sent: the comparison leaks neither the secret nor its length.
    if (!timingSafeEqual(digest(presented), digest(secret)) || presented === '') {
      deps.logger.warn({ path: req.path.slice(0, 100), hadCredentials: header !== '' }, 'admin request refused: wrong or missing bearer secret');
      res.set('WWW-Authenticate', 'Bearer realm="token-broker-admin"');
      fail(res, 401, 'unauthorized', 'A valid admin bearer secret is required.');
      return;
    }
    next();
  });

  app.get(ADMIN_DENIES_PATH, async (_req, res) => {
    await deps.operations.afterChange?.();
    const snapshot = deps.denies.snapshot;
    const nowMs = deps.now();
    const live = (deny: Deny) => deny.until === undefined || nowMs < deny.until;
    res.set('Cache-Control', 'no-store').json({
      denies: [...snapshot.staticDenies.filter(live).map((d) => adminDenyJson(d, 'static')), ...snapshot.sharedDenies.filter(live).map((d) => adminDenyJson(d, 'shared'))],
    });
  });

  app.post(ADMIN_DENIES_PATH, express.json({ limit: '16kb', strict: true, type: 'application/json' }), async (req: Request, res: Response) => {
    if (!req.is('application/json')) {
      fail(res, 415, 'unsupported_media_type', 'Send the deny as application/json.');
      return;
    }
    const body = req.body as unknown;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      fail(res, 400, 'invalid_deny', 'The body must be a JSON object: {"match": {...}, "until": "2h", "reason": "..."}.');
      return;
    }
    const { match, until, reason, by, ...unknown } = body as Record<string, unknown>;
    const extra = Object.keys(unknown);
    if (extra.length > 0) {
      fail(res, 400, 'invalid_deny', 'Unknown fields in the deny.', { problems: extra.slice(0, 10).map((field) => ({ field: field.slice(0, 40), message: 'unknown field' })) });
      return;
    }
    const actor = typeof by === 'string' && sanitizeReason(by) !== '' ? `admin:${sanitizeReason(by).slice(0, 64)}` : 'admin';
    const outcome = await addDeny(deps.operations, { match, until, reason }, actor);
    switch (outcome.status) {
      case 'invalid':
        fail(res, 400, 'invalid_deny', 'The deny is invalid.', { problems: outcome.problems });
        return;
      case 'too_many':
        fail(res, 409, 'too_many_denies', 'The most denies that may be in force at once are in force; remove some first.');
        return;
      case 'unavailable':
        fail(res, 503, 'store_unavailable', 'The deny store (Redis) cannot be written; retry, or add a static deny to the configuration.');
        return;
      case 'added':
        res
          .status(201)
          .set('Cache-Control', 'no-store')
          .json({ deny: adminDenyJson(outcome.deny, 'shared'), ...(outcome.tykKeys !== undefined && { tykKeys: outcome.tykKeys }) });
    }
  });

  app.delete(`${ADMIN_DENIES_PATH}/:id`, async (req: Request, res: Response) => {
    const id = String(req.params.id);
    if (!isDenyId(id)) {
      fail(res, 404, 'not_found', 'No such deny.');
      return;
    }
    const outcome = await removeDeny(deps.operations, id, 'admin');
    if (outcome.status === 'removed') res.set('Cache-Control', 'no-store').json({ removed: adminDenyJson(outcome.deny, 'shared') });
    else if (outcome.status === 'not_found') fail(res, 404, 'not_found', 'No such deny (static denies are removed from the configuration).');
    else fail(res, 503, 'store_unavailable', 'The deny store (Redis) cannot be written; retry.');
  });

  app.use((_req: Request, res: Response) => fail(res, 404, 'not_found', 'No such endpoint.'));
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' ? error.status : 500;
    if (status === 413) fail(res, 413, 'request_too_large', 'The body is larger than 16 KiB.');
    else if (status === 400) fail(res, 400, 'invalid_deny', 'The body is not valid JSON.');
    else if (status === 415) fail(res, 415, 'unsupported_media_type', 'Send the deny as application/json.');
    else {
      deps.logger.error({ error: error instanceof Error ? error.message : String(error) }, 'admin request failed');
      fail(res, 500, 'server_error', 'The admin request failed.');
    }
  });
  return app;
}
