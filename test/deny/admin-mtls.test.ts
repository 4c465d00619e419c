import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';
import { listen, type RunningServer } from '../../src/server/http/serve-http.js';
import { readTlsCredentials } from '../../src/server/tls/tls-credentials.js';

const openssl = opensslAvailability();

/** One HTTPS request to the admin listener, with or without a client certificate. */
function adminRequest(port: number, pki: TestPki, method: string, path: string, client?: { certFile: string; keyFile: string }, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: readFileSync(pki.caFile),
        ...(client !== undefined && { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) }),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('admin request timed out')));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('the admin endpoint with mutual TLS (admin.tls, no bearer secret)', { skip: openssl.ok || process.env.CI === 'true' ? false : `needs the openssl CLI: ${openssl.reason}` }, () => {
  let pki: TestPki;
  let h: Harness;
  let server: RunningServer;

  before(async () => {
    pki = generateTestPki();
    const tls = { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile, minVersion: 'TLSv1.2' as const };
    h = await startHarness({ config: () => ({ admin: { port: 9090, tls } }) });
    await h.broker.warmUp();
    assert.ok(h.broker.adminApp !== undefined);
    // As serve builds it: HTTPS asking for a client certificate, the check in the admin app.
    const credentials = await readTlsCredentials(tls);
    server = await listen(h.broker.adminApp, { port: 0, host: '127.0.0.1', headersTimeoutSeconds: 5, requestTimeoutSeconds: 10, https: { secureContext: credentials.secureContext, requestClientCertificate: true } });
  });
  after(async () => {
    await server.shutdown(1);
    await h.close();
    pki.remove();
  });

  it('refuses a request without a client certificate, or with one from another CA, and changes nothing', async () => {
    const none = await adminRequest(server.port, pki, 'POST', '/admin/v1/denies', undefined, { match: { namespace: 'payments' }, until: '1h', reason: 'x' });
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'unauthorized');
    const foreign = await adminRequest(server.port, pki, 'GET', '/admin/v1/denies', pki.issueClientCertificate('intruder', { byOtherCa: true }));
    assert.equal(foreign.status, 401);
    assert.equal(h.broker.denies.snapshot.sharedDenies.length, 0);
  });

  it('serves a client certificate from the admin CA: the deny it adds refuses on the public listener', async () => {
    const operator = pki.issueClientCertificate('operator');
    const added = await adminRequest(server.port, pki, 'POST', '/admin/v1/denies', operator, { match: { namespace: 'payments' }, until: '1h', reason: 'INC-8' });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal((await h.exchange(await h.issuer.projectedToken({ podUid: 'pod-mtls' })).expect(403)).body.reason, 'denied');
    const listed = await adminRequest(server.port, pki, 'GET', '/admin/v1/denies', operator);
    assert.equal((listed.body.denies as unknown[]).length, 1);
  });
});
