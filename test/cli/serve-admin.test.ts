import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { postTokenExchange, type TokenEndpointAnswer } from '../support/token-exchange-request.js';
import { freePort } from '../support/free-port.js';
import { cliEnv, killAllCli, runCli, startCli, within, type CliProcess } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { eventually } from '../support/multi-broker.js';
import { ADMIN_SECRET } from '../support/admin-harness.js';
import { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';

/*
 * The admin listener as the real `token-broker serve` opens it, in a child process, over real HTTP on loopback: off
 * without an `admin` block, on its own loopback port behind the bearer secret with one, never on the public listener,
 * refused at start-up when it would share the public port, and closed with the rest on SIGTERM.
 */

const SUBJECT_AUDIENCE = 'tyk-token-broker';
const openssl = opensslAvailability();
// Spellings a router might fold onto the admin routes: case, doubled slashes, percent-encoding, a trailing slash, a query.
const ADMIN_PATHS = ['/admin/v1/denies', '/admin/v1/denies/some-id', '/admin', '/admin/', '/ADMIN/v1/denies', '//admin/v1/denies', '/%61dmin/v1/denies', '/admin%2Fv1%2Fdenies', '/admin/v1/denies/', '/admin/v1/denies?x=1'];

describe('serve: the admin listener', { timeout: 180_000 }, () => {
  const scratch = useScratchDir('tb-serve-admin-');
  let issuer: StandInIssuer;
  let keysDir: string;
  let secretFile: string;

  before(async () => {
    keysDir = scratch.file('keys');
    await mkdir(keysDir);
    await writeFile(join(keysDir, 'key-1.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    secretFile = await scratch.write('admin-secret', `${ADMIN_SECRET}\n`);
    issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE });
  });

  after(async () => {
    await killAllCli();
    await issuer?.close();
  });

  let configCount = 0;
  async function writeConfig(port: number, extra: Record<string, unknown> = {}): Promise<string> {
    configCount += 1;
    return scratch.write(
      `broker-${configCount}.yaml`,
      stringify({
        server: { host: '127.0.0.1', port, publicUrl: `http://127.0.0.1:${port}` },
        issuers: [{ name: 'test-cluster', issuer: issuer.issuer, audiences: [SUBJECT_AUDIENCE] }],
        signing: { algorithm: 'ES256', keysDir },
        rules: [{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'] }],
        logging: { level: 'info' },
        ...extra,
      }),
    );
  }

  async function startServe(configPath: string, port: number): Promise<CliProcess> {
    const cli = startCli(['serve', '--config', configPath], { env: cliEnv() });
    const ready = await eventually(async () => {
      if (cli.child.exitCode !== null) return true;
      try {
        return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        return false;
      }
    }, 30_000);
    assert.ok(ready && cli.child.exitCode === null, `the broker did not become ready\nstdout:\n${cli.stdout()}\nstderr:\n${cli.stderr()}`);
    return cli;
  }

  const logLines = (cli: CliProcess) =>
    cli
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  async function exchange(port: number, namespace: string): Promise<TokenEndpointAnswer> {
    return postTokenExchange(`http://127.0.0.1:${port}`, await issuer.projectedToken({ namespace, serviceAccount: 'runner' }));
  }

  async function request(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  async function accepts(port: number): Promise<boolean> {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      return true;
    } catch {
      return false;
    }
  }

  /** Every admin path on the public listener, with the right secret and every method: 404, nothing done. */
  async function assertPublicHasNoAdmin(port: number): Promise<void> {
    for (const path of ADMIN_PATHS) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN_SECRET}`, 'content-type': 'application/json' },
          ...(method === 'POST' && { body: JSON.stringify({ match: { namespace: 'payments' }, until: '1h', reason: 'via the public port' }) }),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        assert.equal(res.status, 404, `${method} ${path} on the public listener`);
      }
    }
  }

  it('without an admin block: no admin listener, and the public listener answers 404 on /admin paths', async () => {
    const port = await freePort();
    const cli = await startServe(await writeConfig(port), port);
    await assertPublicHasNoAdmin(port);
    assert.equal((await exchange(port, 'payments')).status, 200, 'nothing was denied through the public port');
    assert.ok(!logLines(cli).some((l) => l.msg === 'admin endpoint listening'), 'no admin listener is started');
    cli.child.kill('SIGTERM');
    assert.deepEqual(await within(20_000, 'serve to exit on SIGTERM', cli.exited), { code: 0, signal: null });
  });

  describe('with admin: { port, bearerTokenFile }', () => {
    let port: number;
    let adminPort: number;
    let cli: CliProcess;
    const admin = (path: string) => `http://127.0.0.1:${adminPort}${path}`;

    before(async () => {
      port = await freePort();
      adminPort = await freePort();
      cli = await startServe(await writeConfig(port, { admin: { port: adminPort, bearerTokenFile: secretFile } }), port);
    });

    it('binds loopback by default and logs its address, with no secret in the log', async () => {
      const line = logLines(cli).find((l) => l.msg === 'admin endpoint listening');
      assert.ok(line !== undefined, `no admin listening line\n${cli.stdout()}`);
      assert.equal(line.host, '127.0.0.1');
      assert.equal(line.port, adminPort);
      assert.equal(line.address, `http://127.0.0.1:${adminPort}`);
      assert.deepEqual(line.authentication, ['bearer']);
      assert.ok(!cli.stdout().includes(ADMIN_SECRET) && !cli.stderr().includes(ADMIN_SECRET), 'the admin secret is never logged');
    });

    it('refuses a request without the bearer secret, or with a wrong one, with 401 and adds nothing', async () => {
      const deny = JSON.stringify({ match: { namespace: 'payments' }, until: '1h', reason: 'no credentials' });
      const attempts: Record<string, string>[] = [
        {},
        { authorization: 'Bearer wrong-secret-wrong-secret-wrong-secret' },
        { authorization: `Bearer ${ADMIN_SECRET}x` },
        { authorization: `Basic ${Buffer.from(`admin:${ADMIN_SECRET}`).toString('base64')}` },
        { authorization: ADMIN_SECRET },
      ];
      for (const headers of attempts) {
        const listed = await request(admin('/admin/v1/denies'), { headers });
        assert.equal(listed.status, 401, JSON.stringify(headers));
        assert.equal(listed.body.error, 'unauthorized');
        const added = await request(admin('/admin/v1/denies'), { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: deny });
        assert.equal(added.status, 401);
        assert.ok(!JSON.stringify(added.body).includes(ADMIN_SECRET));
      }
      assert.equal((await exchange(port, 'payments')).status, 200, 'nothing was denied');
    });

    it('a deny added with the right secret refuses the exchange on the public port (403 denied); its removal brings it back', async () => {
      const bearer = { authorization: `Bearer ${ADMIN_SECRET}` };
      assert.equal((await exchange(port, 'payments')).status, 200);

      const added = await request(admin('/admin/v1/denies'), {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ match: { namespace: 'payments' }, until: '1h', reason: 'INC-7 kill switch', by: 'sre' }),
      });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      const deny = added.body.deny as { id: string; source: string; match: unknown };
      assert.equal(deny.source, 'shared');
      assert.deepEqual(deny.match, { namespace: 'payments' });

      const refused = await exchange(port, 'payments');
      assert.equal(refused.status, 403);
      assert.deepEqual(refused.body, { error: 'access_denied', error_description: 'An operator has denied tokens to this workload: INC-7 kill switch', reason: 'denied' });

      const listed = await request(admin('/admin/v1/denies'), { headers: bearer });
      assert.equal(listed.status, 200);
      assert.deepEqual((listed.body.denies as { id: string }[]).map((d) => d.id), [deny.id]);

      await assertPublicHasNoAdmin(port);
      assert.equal((await exchange(port, 'payments')).status, 403, 'the public DELETE did not remove the deny');

      const removed = await request(admin(`/admin/v1/denies/${deny.id}`), { method: 'DELETE', headers: bearer });
      assert.equal(removed.status, 200);
      assert.equal((removed.body.removed as { id: string }).id, deny.id);
      const back = await exchange(port, 'payments');
      assert.equal(back.status, 200);
      assert.equal(typeof back.body.access_token, 'string');
    });

    it('SIGTERM with the admin listener open exits 0 and closes both listeners', async () => {
      // A keep-alive connection to the admin listener is open: the drain must not wait on it.
      assert.equal((await request(admin('/admin/v1/denies'), { headers: { authorization: `Bearer ${ADMIN_SECRET}` } })).status, 200);
      cli.child.kill('SIGTERM');
      assert.deepEqual(await within(20_000, 'serve to exit on SIGTERM', cli.exited), { code: 0, signal: null });
      assert.ok(logLines(cli).some((l) => l.msg === 'stopped'));
      assert.equal(await accepts(adminPort), false, 'the admin port is closed');
      assert.equal(await accepts(port), false, 'the public port is closed');
    });
  });

  it('admin.port equal to server.port: serve exits 2 naming admin.port, and listens on nothing', async () => {
    const port = await freePort();
    const run = await runCli(['serve', '--config', await writeConfig(port, { admin: { port, bearerTokenFile: secretFile } })], { env: cliEnv(), timeoutMs: 30_000 });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /admin\.port: must differ from server\.port/);
    assert.equal(await accepts(port), false);
  });

  it('PORT set to admin.port: the same refusal (the environment cannot put both on one listener)', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const run = await runCli(['serve', '--config', await writeConfig(port, { admin: { port: adminPort, bearerTokenFile: secretFile } })], { env: cliEnv({ PORT: String(adminPort) }), timeoutMs: 30_000 });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /admin\.port: must differ from server\.port/);
    assert.equal(await accepts(adminPort), false);
  });

  it('an admin port already taken: serve exits 2 naming admin.port, and does not keep the public listener open', async () => {
    const port = await freePort();
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const address = squatter.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const run = await runCli(['serve', '--config', await writeConfig(port, { admin: { port: address.port, bearerTokenFile: secretFile } })], { env: cliEnv(), timeoutMs: 30_000 });
      assert.equal(run.code, 2, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr, new RegExp(`admin\\.port: cannot listen on 127\\.0\\.0\\.1:${address.port}: .*EADDRINUSE`));
      assert.equal(await accepts(port), false, 'the public listener is closed');
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it('the public port already taken (with an admin block): serve exits 2 and leaves the admin port unbound', async () => {
    const adminPort = await freePort();
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const address = squatter.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const run = await runCli(['serve', '--config', await writeConfig(address.port, { admin: { port: adminPort, bearerTokenFile: secretFile } })], { env: cliEnv(), timeoutMs: 30_000 });
      assert.equal(run.code, 2, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr, /EADDRINUSE/);
      assert.equal(await accepts(adminPort), false, 'the admin listener never opened');
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it('an unreadable admin.tls certificate: serve exits 2 naming admin.tls before anything listens', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const missing = scratch.file('no-such-dir', 'admin.pem');
    const tls = { certFile: missing, keyFile: missing, clientCaFile: missing };
    const run = await runCli(['serve', '--config', await writeConfig(port, { admin: { port: adminPort, bearerTokenFile: secretFile, tls } })], { env: cliEnv(), timeoutMs: 30_000 });
    assert.equal(run.code, 2, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /admin\.tls: /);
    assert.ok(!run.stdout.includes('token broker listening'), 'the public listener never opened');
    assert.equal(await accepts(port), false);
    assert.equal(await accepts(adminPort), false);
  });

  describe('with admin.tls (mutual TLS) and bearerTokenFile: both are required', { skip: openssl.ok || process.env.CI === 'true' ? false : `needs the openssl CLI: ${openssl.reason}` }, () => {
    let pki: TestPki;
    let port: number;
    let adminPort: number;
    let cli: CliProcess;

    /** One HTTPS request to the admin listener, trusting the test CA, with or without a client certificate. */
    function adminRequest(method: string, path: string, options: { client?: { certFile: string; keyFile: string }; bearer?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
      return new Promise((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: adminPort,
            method,
            path,
            ca: readFileSync(pki.caFile),
            ...(options.client !== undefined && { cert: readFileSync(options.client.certFile), key: readFileSync(options.client.keyFile) }),
            headers: { ...(options.body !== undefined && { 'content-type': 'application/json' }), ...(options.bearer !== undefined && { authorization: `Bearer ${options.bearer}` }) },
            timeout: 10_000,
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
          },
        );
        req.on('timeout', () => req.destroy(new Error('admin request timed out')));
        req.on('error', reject);
        req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
      });
    }

    before(async () => {
      pki = generateTestPki();
      port = await freePort();
      adminPort = await freePort();
      const tls = { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile };
      cli = await startServe(await writeConfig(port, { admin: { port: adminPort, bearerTokenFile: secretFile, tls } }), port);
    });
    after(() => pki?.remove());

    it('logs an https address with both authentications; a certificate without the secret, or the secret without a certificate, is refused', async () => {
      const line = logLines(cli).find((l) => l.msg === 'admin endpoint listening');
      assert.equal(line?.address, `https://127.0.0.1:${adminPort}`);
      assert.deepEqual(line?.authentication, ['bearer', 'mutual-tls']);
      const operator = pki.issueClientCertificate('operator');
      const deny = { match: { namespace: 'payments' }, until: '1h', reason: 'INC-9' };
      assert.equal((await adminRequest('POST', '/admin/v1/denies', { bearer: ADMIN_SECRET, body: deny })).status, 401, 'no client certificate');
      assert.equal((await adminRequest('POST', '/admin/v1/denies', { client: pki.issueClientCertificate('intruder', { byOtherCa: true }), bearer: ADMIN_SECRET, body: deny })).status, 401, 'a certificate of another CA');
      assert.equal((await adminRequest('POST', '/admin/v1/denies', { client: operator, body: deny })).status, 401, 'no bearer secret');
      assert.equal((await exchange(port, 'payments')).status, 200, 'nothing was denied');

      const added = await adminRequest('POST', '/admin/v1/denies', { client: operator, bearer: ADMIN_SECRET, body: deny });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      assert.equal((await exchange(port, 'payments')).body.reason, 'denied');
      const id = (added.body.deny as { id: string }).id;
      assert.equal((await adminRequest('DELETE', `/admin/v1/denies/${id}`, { client: operator, bearer: ADMIN_SECRET })).status, 200);
      assert.equal((await exchange(port, 'payments')).status, 200);

      cli.child.kill('SIGTERM');
      assert.deepEqual(await within(20_000, 'serve to exit on SIGTERM', cli.exited), { code: 0, signal: null });
    });
  });
});
