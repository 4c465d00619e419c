import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import supertest from 'supertest';
import { startHarness, type Harness } from './broker-harness.js';

/** The admin bearer secret the admin tests write to admin.bearerTokenFile (32+ characters, as required). */
export const ADMIN_SECRET = 'admin-secret-for-tests-0123456789abcdef';

/** A harness broker with the admin endpoint on its own loopback listener. */
export async function startAdminHarness(secretFile: string, extra: Parameters<typeof startHarness>[0] = {}): Promise<{ h: Harness; admin: ReturnType<typeof supertest>; server: Server; close(): Promise<void> }> {
  const h = await startHarness({
    ...extra,
    config: (issuerUrl) => ({
      admin: { port: 9090, bearerTokenFile: secretFile },
      denies: { static: [{ id: 'static-freeze', namespace: 'frozen', reason: 'frozen by config' }] },
      ...extra.config?.(issuerUrl),
    }),
  });
  await h.broker.warmUp();
  const adminApp = h.broker.adminApp;
  assert.ok(adminApp !== undefined, 'the admin app is built when configured');
  const server = createServer(adminApp);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    h,
    server,
    admin: supertest(server),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await h.close();
    },
  };
}

