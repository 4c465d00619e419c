import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { freePort } from '../support/free-port.js';
import { cliEnv, runCli, startCli, type CliProcess } from '../support/cli-run.js';
import { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';

/*
 * `token-broker serve` as a real child process with server.tls: HTTPS only, mutual TLS on POST /token and
 * nowhere else, the certificate's expiry on /metrics, and a renewal written the way the kubelet writes a Secret
 * (rename into place) served to new connections without a restart.
 */

const AUDIENCE = 'tyk-token-broker';
const openssl = opensslAvailability();
const skip = !openssl.ok && process.env.CI !== 'true' ? `needs the openssl CLI: ${openssl.ok ? '' : openssl.reason}` : false;

interface Answer {
  readonly status: number;
  readonly text: string;
}

interface ClientCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

function httpsCall(port: number, ca: string, path: string, options: { body?: string; client?: ClientCertificate } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.body === undefined ? 'GET' : 'POST',
        ca: readFileSync(ca),
        agent: false,
        timeout: 10_000,
        ...(options.client !== undefined && { cert: readFileSync(options.client.certFile), key: readFileSync(options.client.keyFile) }),
        headers: options.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(options.body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.once('error', reject);
    req.end(options.body);
  });
}

function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca) }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
const expirySeconds = (file: string) => Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000;
const metricValue = (exposition: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(exposition)?.[1]);

describe('serve with server.tls (a real child process)', { skip, timeout: 120_000 }, () => {
  let pki: TestPki;
  let issuer: StandInIssuer;
  let cli: CliProcess | undefined;
  let port: number;
  /** Everything the broker printed, stdout then stderr. */
  const output = () => `${cli?.stdout() ?? ''}${cli?.stderr() ?? ''}`;
  let tlsDir: string;
  let clientGood: ClientCertificate;
  let clientOtherCa: ClientCertificate;
  let configPath: string;

  before(async () => {
    pki = generateTestPki({ serverDays: 2 });
    clientGood = pki.issueClientCertificate('argo-step');
    clientOtherCa = pki.issueClientCertificate('intruder', { byOtherCa: true });
    tlsDir = join(pki.dir, 'tls');
    await mkdir(tlsDir);
    copyFileSync(pki.serverCertFile, join(tlsDir, 'tls.crt'));
    copyFileSync(pki.serverKeyFile, join(tlsDir, 'tls.key'));
    copyFileSync(pki.caFile, join(tlsDir, 'ca.crt'));
    const keysDir = join(pki.dir, 'keys');
    await mkdir(keysDir);
    await writeFile(join(keysDir, 'key-1.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    issuer = await startStandInIssuer({ audience: AUDIENCE });
    port = await freePort();
    const config = {
      server: {
        host: '127.0.0.1',
        publicUrl: `https://127.0.0.1:${port}`,
        tls: { certFile: join(tlsDir, 'tls.crt'), keyFile: join(tlsDir, 'tls.key'), clientCaFile: join(tlsDir, 'ca.crt') },
      },
      issuers: [{ name: 'test-cluster', issuer: issuer.issuer, audiences: [AUDIENCE] }],
      signing: { algorithm: 'ES256', keysDir },
      tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
      kubernetes: { enabled: false },
      rules: [{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'] }],
    };
    configPath = join(pki.dir, 'broker.yaml');
    await writeFile(configPath, JSON.stringify(config));
    cli = startCli(['serve', '--config', configPath], { env: cliEnv({ PORT: String(port) }) });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const ready = await httpsCall(port, pki.caFile, '/readyz').catch(() => undefined);
      if (ready?.status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`the broker did not become ready over HTTPS\n${output()}`);
  });

  after(async () => {
    // SIGTERM, not SIGKILL: the broker's own shutdown runs, as it would in a pod.
    cli?.child.kill('SIGTERM');
    await cli?.exited;
    await issuer?.close();
    pki?.remove();
  });

  const exchangeBody = async (podUid: string) =>
    new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: await issuer.projectedToken({ podUid }) }).toString();

  it('serves HTTPS only: probes, metrics and the JWKS answer without a client certificate; plain HTTP gets no answer', async () => {
    for (const path of ['/healthz', '/readyz', '/.well-known/jwks.json', '/.well-known/openid-configuration']) {
      assert.equal((await httpsCall(port, pki.caFile, path)).status, 200, path);
    }
    const plain = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 5000 }, (res) => resolve(`answered ${res.statusCode}`));
      req.once('error', (error) => resolve(`refused: ${error.message}`));
      req.once('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    assert.match(plain, /^refused/);
  });

  it('refuses TLS 1.1 (server.tls.minVersion defaults to TLSv1.2)', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(pki.caFile), minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, () => {
        resolve(`negotiated ${socket.getProtocol()}`);
        socket.end();
      });
      socket.once('error', (error) => resolve(`refused: ${error.message}`));
    });
    assert.match(outcome, /^refused/);
  });

  it('POST /token needs a client certificate the CA signed: none or an unrelated CA\'s is 401 invalid_client, nothing minted', async () => {
    for (const client of [undefined, clientOtherCa]) {
      const answer = await httpsCall(port, pki.caFile, '/token', { body: await exchangeBody('mtls-refused'), ...(client !== undefined && { client }) });
      assert.equal(answer.status, 401, answer.text);
      const body = JSON.parse(answer.text) as Record<string, unknown>;
      assert.equal(body.error, 'invalid_client');
      assert.equal(body.reason, 'client_certificate_required');
      assert.ok(!('access_token' in body));
    }
    const metrics = (await httpsCall(port, pki.caFile, '/metrics')).text;
    assert.match(metrics, /token_broker_exchanges_total\{outcome="rejected",reason="client_certificate_required",issuer=""\} 2/);
    assert.doesNotMatch(metrics, /outcome="issued"/);
  });

  it('with the CA\'s client certificate, the exchange mints a token whose issuer is the HTTPS publicUrl', async () => {
    const answer = await httpsCall(port, pki.caFile, '/token', { body: await exchangeBody('mtls-accepted'), client: clientGood });
    assert.equal(answer.status, 200, answer.text);
    const token = String((JSON.parse(answer.text) as Record<string, unknown>).access_token);
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(payload.iss, `https://127.0.0.1:${port}`);
  });

  it('exports the serving certificate\'s expiry; a renewal renamed into place is served to new connections and exported, without a restart', async () => {
    let metrics = (await httpsCall(port, pki.caFile, '/metrics')).text;
    assert.equal(metricValue(metrics, 'token_broker_tls_certificate_expiry_timestamp_seconds'), expirySeconds(pki.serverCertFile));
    assert.equal(metricValue(metrics, 'token_broker_tls_files_read_ok'), 1);
    assert.equal(metricValue(metrics, 'token_broker_tls_certificate_not_before_timestamp_seconds'), Date.parse(new X509Certificate(readFileSync(pki.serverCertFile)).validFrom) / 1000);
    assert.equal(await servedFingerprint(port, pki.caFile), fingerprintOf(pki.serverCertFile));
    const pid = cli?.child.pid;

    const renewed = pki.issueServerCertificate('renewed', 9);
    copyFileSync(renewed.keyFile, join(tlsDir, 'tls.key.new'));
    copyFileSync(renewed.certFile, join(tlsDir, 'tls.crt.new'));
    renameSync(join(tlsDir, 'tls.key.new'), join(tlsDir, 'tls.key'));
    renameSync(join(tlsDir, 'tls.crt.new'), join(tlsDir, 'tls.crt'));

    const deadline = Date.now() + 15_000;
    let served = '';
    while (Date.now() < deadline) {
      served = await servedFingerprint(port, pki.caFile);
      if (served === fingerprintOf(renewed.certFile)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(served, fingerprintOf(renewed.certFile), `the renewal was not served\n${output()}`);
    metrics = (await httpsCall(port, pki.caFile, '/metrics')).text;
    assert.equal(metricValue(metrics, 'token_broker_tls_certificate_expiry_timestamp_seconds'), expirySeconds(renewed.certFile));
    assert.equal(cli?.child.pid, pid);
    assert.equal(cli?.child.exitCode, null);
    assert.match(output(), /TLS certificate reloaded/);
    assert.doesNotMatch(output(), /BEGIN [A-Z ]*PRIVATE KEY/);
  });

  it('does not start on a key that is not the certificate\'s: exit 2 naming server.tls', async () => {
    const other = pki.issueServerCertificate('mismatch', 1);
    const result = await runCli(['serve', '--config', configPath], {
      env: cliEnv({ PORT: String(await freePort()), TLS_CERT_FILE: pki.serverCertFile, TLS_KEY_FILE: other.keyFile }),
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /server\.tls: .*do not form a TLS server context: .*key values mismatch/);
    assert.doesNotMatch(result.stderr, /PRIVATE KEY/);
  });
});
