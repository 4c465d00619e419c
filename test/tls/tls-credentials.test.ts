import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { pino } from 'pino';
import { readTlsCredentials, TlsFilesError } from '../../src/server/tls/tls-credentials.js';
import { reloadTlsOnChange } from '../../src/server/tls/tls-reloader.js';
import { listen, type RunningServer } from '../../src/server/http/serve-http.js';
import { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';

/*
 * The listener's TLS files, read and reloaded as cert-manager and the kubelet write them: real certificates from
 * openssl, a real HTTPS listener on loopback, real TLS clients. A renewal reaches new connections without a
 * restart; a broken one never reaches a client; open connections keep their certificate.
 */

const openssl = opensslAvailability();
const skip = !openssl.ok && process.env.CI !== 'true' ? `needs the openssl CLI: ${openssl.ok ? '' : openssl.reason}` : false;

/** The certificate a fresh TLS connection to the listener is given. */
function servedCertificate(port: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca) }, () => {
      const peer = socket.getPeerCertificate();
      socket.end();
      resolve(peer);
    });
    socket.once('error', reject);
  });
}

function fingerprintOf(file: string): string {
  return new X509Certificate(readFileSync(file)).fingerprint256;
}

describe('TLS files: reading', { skip }, () => {
  let pki: TestPki;
  before(() => {
    pki = generateTestPki({ serverDays: 3 });
  });
  after(() => pki?.remove());

  it('reads a certificate and its key: notAfter and fingerprint of the leaf, TLS 1.2 or the configured minimum', async () => {
    const credentials = await readTlsCredentials({ certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, minVersion: 'TLSv1.3' });
    const leaf = new X509Certificate(readFileSync(pki.serverCertFile));
    assert.equal(credentials.notAfter, Date.parse(leaf.validTo));
    assert.ok(credentials.notAfter > Date.now() + 2.9 * 86_400_000 && credentials.notAfter < Date.now() + 3.1 * 86_400_000);
    assert.equal(credentials.fingerprint256, leaf.fingerprint256);
    assert.equal(credentials.secureContext.minVersion, 'TLSv1.3');
  });

  it('refuses a key that is not the certificate\'s, naming the files and never their content', async () => {
    const other = pki.issueServerCertificate('other', 1);
    const error = await readTlsCredentials({ certFile: pki.serverCertFile, keyFile: other.keyFile, minVersion: 'TLSv1.2' }).then(
      () => assert.fail('a mismatched key was accepted'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TlsFilesError);
    assert.match(error.message, /do not form a TLS server context: .*key values mismatch/);
    assert.ok(error.message.includes(pki.serverCertFile) && error.message.includes(other.keyFile));
    const keyBody = readFileSync(other.keyFile, 'utf8').split('\n')[1] ?? '';
    assert.ok(keyBody.length > 20 && !error.message.includes(keyBody), 'the key appears in the message');
  });

  it('refuses a missing file, a file that is no certificate, and a truncated key, each with a precise message', async () => {
    await assert.rejects(readTlsCredentials({ certFile: join(pki.dir, 'absent.crt'), keyFile: pki.serverKeyFile, minVersion: 'TLSv1.2' }), /cannot read the certificate .*absent\.crt: ENOENT/);
    const notPem = join(pki.dir, 'not-a-cert.crt');
    writeFileSync(notPem, 'hello\n');
    await assert.rejects(readTlsCredentials({ certFile: notPem, keyFile: pki.serverKeyFile, minVersion: 'TLSv1.2' }), /holds no PEM certificate/);
    const truncated = join(pki.dir, 'truncated.key');
    writeFileSync(truncated, readFileSync(pki.serverKeyFile, 'utf8').slice(0, 60));
    await assert.rejects(readTlsCredentials({ certFile: pki.serverCertFile, keyFile: truncated, minVersion: 'TLSv1.2' }), /do not form a TLS server context/);
    await assert.rejects(readTlsCredentials({ certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: join(pki.dir, 'absent-ca.crt'), minVersion: 'TLSv1.2' }), /cannot read the client CA bundle/);
  });
});

describe('TLS files: reloading on a live listener', { skip }, () => {
  let pki: TestPki;
  let server: RunningServer;
  let certFile: string;
  let keyFile: string;
  before(async () => {
    pki = generateTestPki({ serverDays: 2 });
    certFile = join(pki.dir, 'tls.crt');
    keyFile = join(pki.dir, 'tls.key');
    copyFileSync(pki.serverCertFile, certFile);
    copyFileSync(pki.serverKeyFile, keyFile);
  });
  after(async () => {
    await server?.shutdown(1);
    pki?.remove();
  });

  it('a renewal reaches new connections, a broken one is refused and the one in force stays, an open connection keeps its certificate', async () => {
    const files = { certFile, keyFile, minVersion: 'TLSv1.2' as const };
    const initial = await readTlsCredentials(files);
    server = await listen(
      (req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end(req.url);
      },
      { port: 0, host: '127.0.0.1', headersTimeoutSeconds: 5, requestTimeoutSeconds: 5, https: { secureContext: initial.secureContext, requestClientCertificate: false } },
    );
    const reads: boolean[] = [];
    const reloader = reloadTlsOnChange({ files, initial, apply: (next) => server.setSecureContext(next.secureContext), onRead: (ok) => reads.push(ok), logger: pino({ level: 'silent' }), rescanIntervalMs: 0, watch: false });
    try {
      assert.equal((await servedCertificate(server.port, pki.caFile)).fingerprint256, fingerprintOf(pki.serverCertFile));

      // A keep-alive connection opened before the renewal.
      const open = connect({ host: '127.0.0.1', port: server.port, ca: readFileSync(pki.caFile) });
      await new Promise<void>((resolve, reject) => open.once('secureConnect', resolve).once('error', reject));
      const before = open.getPeerCertificate().fingerprint256;

      // Half a renewal: the new certificate written, the key not yet. Refused; the old pair keeps serving.
      const renewed = pki.issueServerCertificate('renewed', 5);
      copyFileSync(renewed.certFile, certFile);
      assert.equal(await reloader.rescan(), false);
      assert.equal((await servedCertificate(server.port, pki.caFile)).fingerprint256, fingerprintOf(pki.serverCertFile));

      // The key arrives: the renewal is in force for new connections.
      copyFileSync(renewed.keyFile, keyFile);
      assert.equal(await reloader.rescan(), true);
      assert.equal((await servedCertificate(server.port, pki.caFile)).fingerprint256, fingerprintOf(renewed.certFile));
      assert.equal(reloader.inForce().fingerprint256, fingerprintOf(renewed.certFile));
      assert.deepEqual(reads, [false, true]);

      // The connection opened before still works, on the certificate it started with.
      open.write('GET /still-open HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        open.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).once('end', () => resolve(text));
      });
      assert.match(answer, /^HTTP\/1\.1 200 OK/);
      assert.ok(answer.endsWith('/still-open'));
      assert.equal(before, fingerprintOf(pki.serverCertFile));
    } finally {
      await reloader.close();
    }
  });

  it('fs.watch picks up a Kubernetes-style ..data symlink swap without waiting for the periodic re-read', async () => {
    // Secret volumes: tls.crt -> ..data/tls.crt, ..data -> ..2026_12_06_xx; an update swaps ..data atomically.
    const mount = join(pki.dir, 'mount');
    const first = join(mount, '..v1');
    mkdirSync(first, { recursive: true });
    copyFileSync(pki.serverCertFile, join(first, 'tls.crt'));
    copyFileSync(pki.serverKeyFile, join(first, 'tls.key'));
    symlinkSync('..v1', join(mount, '..data'));
    symlinkSync('..data/tls.crt', join(mount, 'tls.crt'));
    symlinkSync('..data/tls.key', join(mount, 'tls.key'));
    const files = { certFile: join(mount, 'tls.crt'), keyFile: join(mount, 'tls.key'), minVersion: 'TLSv1.2' as const };
    const initial = await readTlsCredentials(files);
    const applied: string[] = [];
    const reloader = reloadTlsOnChange({ files, initial, apply: (next) => applied.push(next.fingerprint256), logger: pino({ level: 'silent' }), rescanIntervalMs: 0 });
    try {
      const renewed = pki.issueServerCertificate('watched', 4);
      const second = join(mount, '..v2');
      mkdirSync(second);
      copyFileSync(renewed.certFile, join(second, 'tls.crt'));
      copyFileSync(renewed.keyFile, join(second, 'tls.key'));
      symlinkSync('..v2', join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
      const deadline = Date.now() + 5000;
      while (applied.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(applied, [fingerprintOf(renewed.certFile)]);
    } finally {
      await reloader.close();
    }
  });

  it('an HTTPS request through Node\'s client succeeds against the CA, and fails against an unrelated CA', async () => {
    const get = (ca: string) =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: server.port, path: '/x', ca: readFileSync(ca) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .once('error', reject)
          .end();
      });
    assert.equal(await get(pki.caFile), 200);
    await assert.rejects(get(pki.otherCaFile), /unable to verify|self.signed|certificate/i);
  });
});
