import express, { type Router } from 'express';

/** What readiness depends on, each check with a reason an operator can act on. */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, { readonly ok: boolean; readonly detail?: string }>>;
}

/** /healthz: the process answers. /readyz: it can verify and sign (503 with the failing checks otherwise). */
export function healthRoutes(readiness: () => ReadinessReport): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    const report = readiness();
    res.set('Cache-Control', 'no-store').status(report.ready ? 200 : 503).json({ status: report.ready ? 'ready' : 'not_ready', checks: report.checks });
  });
  return router;
}
