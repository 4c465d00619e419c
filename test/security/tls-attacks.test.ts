import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { startHarness, PUBLIC_URL, type Harness } from '../support/broker-harness.js';
import { listen, type RunningServer } from '../../src/server/http/serve-http.js';
import { readTlsCredentials } from '../../src/server/tls/tls-credentials.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';
import { assertErrorShape, auditCount, memoryCache, type HttpResult } from './refusal.js';

/*
 * Attacks on mutual TLS (server.tls.clientCaFile), on a real HTTPS listener built by `listen` as `serve` builds it,
 * with certificates from openssl. The client certificate is a gate in front of POST /token, never a source of
 * identity: whatever certificate is presented, no fact of it reaches a minted token.
 */

const openssl = opensslAvailability();
const SKIP = !openssl.ok && process.env.CI !== 'true' ? `needs the openssl CLI: ${openssl.ok ? '' : openssl.reason}` : false;

interface Client {
  readonly certFile: string;
  readonly keyFile: string;
}

describe('security: mutual TLS on POST /token', { skip: SKIP, timeout: 60_000 }, () => {
  let h: Harness;
  let pki: TestPki;
  let server: RunningServer;

  before(async () => {
    pki = generateTestPki();
    const tls = { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile, minVersion: 'TLSv1.2' as const };
    h = await startHarness({ config: () => ({ server: { port: 8080, publicUrl: PUBLIC_URL, tls } }) });
    const credentials = await readTlsCredentials(tls);
    server = await listen(h.broker.app, { port: 0, host: '127.0.0.1', headersTimeoutSeconds: 5, requestTimeoutSeconds: 10, https: { secureContext: credentials.secureContext, requestClientCertificate: true } });
  });

  after(async () => {
    await server?.shutdown(1);
    await h?.close();
    pki?.remove();
  });

  function post(path: string, body: string | Buffer, client?: Client): Promise<HttpResult & { closed: boolean }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: server.port,
          path,
          method: 'POST',
          agent: false,
          ca: readFileSync(pki.caFile),
          ...(client !== undefined && { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) }),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            let parsed: unknown = {};
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON: the checks show the text
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text, closed: res.headers.connection === 'close' });
          });
        },
      );
      // A server that answers before reading the whole upload may reset the rest: the answer is what counts.
      req.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
      req.end(body);
    });
  }

  const form = async () => new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: await h.issuer.projectedToken() }).toString();
  const REFUSED = { status: 401, error: 'invalid_client', reason: 'client_certificate_required', description: /requires mutual TLS/ } as const;

  async function expectGateRefusal(send: () => Promise<HttpResult>): Promise<void> {
    const audits = auditCount(h);
    const cached = memoryCache(h).size;
    assertErrorShape(await send(), REFUSED);
    assert.equal(auditCount(h), audits, 'nothing minted');
    assert.equal(memoryCache(h).size, cached, 'nothing cached');
  }

  it('a valid subject token without a client certificate is refused, on every spelling of the path', async () => {
    for (const path of ['/token', '/token/', '/TOKEN', '/token?x=1']) await expectGateRefusal(async () => post(path, await form()));
  });

  it('a client certificate from another CA, with the same subject as a legitimate client, is refused', async () => {
    pki.issueClientCertificate('argo-step');
    const impostor = pki.issueClientCertificate('argo-step-impostor', { byOtherCa: true });
    await expectGateRefusal(async () => post('/token', await form(), impostor));
  });

  it('a server certificate of the same CA (serverAuth only, e.g. stolen from another service) is refused as a client certificate', async () => {
    await expectGateRefusal(async () => post('/token', await form(), { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile }));
  });

  it('a 1 MiB upload without a certificate is answered 401 without being read, and the connection is closed', async () => {
    const result = await post('/token', Buffer.alloc(1024 * 1024, 'a'));
    assertErrorShape(result, REFUSED);
    assert.equal(result.closed, true);
  });

  it('the CA\'s client certificate passes the gate and nothing of it enters the token: the claims are the subject token\'s', async () => {
    const client = pki.issueClientCertificate('system:serviceaccount:kube-system:admin');
    const result = await post('/token', await form(), client);
    assert.equal(result.status, 200, result.text);
    const token = String((result.body as Record<string, unknown>).access_token);
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(payload.sub, 'system:serviceaccount:payments:argo-runner');
    assert.doesNotMatch(JSON.stringify(payload), /kube-system|admin/);
  });
});
