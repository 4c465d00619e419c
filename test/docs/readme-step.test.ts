import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { listen, type RunningServer } from '../../src/server/http/serve-http.js';
import { readTlsCredentials } from '../../src/server/tls/tls-credentials.js';
import { PUBLIC_URL, startHarness, type Harness } from '../support/broker-harness.js';
import { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';

/*
 * README's "Calling it from a workflow step" shell block, as written, run by `sh` with the real curl against the
 * broker serving HTTPS on loopback (certificate from a throwaway CA, trusted through CURL_CA_BUNDLE as the README
 * says) and a loopback gateway. Only the three addresses are pointed at loopback. A refusal must stop the step
 * with the broker's error in its log, and the gateway must never see a request with an empty token.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BROKER = 'https://token-broker.platform.svc.cluster.local';
const TOKEN_FILE = '/var/run/secrets/token-broker/token';
const GATEWAY = 'https://gateway.example.com';
const tools = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' });
const openssl = opensslAvailability();
const SKIP =
  process.env.CI === 'true' ? false : tools.status !== 0 ? 'needs sh and curl' : !openssl.ok ? `needs the openssl CLI: ${openssl.reason}` : false;

/** `sh -c script`, asynchronously: the broker answering it runs in this process. */
function runShell(script: string, caFile: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CURL_CA_BUNDLE: caFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function readmeStepScript(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## Calling it from a workflow step\n')[1]?.split(/\n## /)[0] ?? '';
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block !== undefined, 'README has a sh block under "Calling it from a workflow step"');
  return block;
}

describe('README: the workflow step\'s shell block, run as written', { skip: SKIP, timeout: 60_000 }, () => {
  let h: Harness;
  let pki: TestPki;
  let broker: RunningServer;
  let gateway: Server;
  let dir: string;
  const seen: (string | undefined)[] = [];

  before(async () => {
    h = await startHarness();
    pki = generateTestPki();
    const credentials = await readTlsCredentials({ certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, minVersion: 'TLSv1.2' });
    broker = await listen(h.broker.app, { port: 0, host: '127.0.0.1', headersTimeoutSeconds: 5, requestTimeoutSeconds: 10, https: { secureContext: credentials.secureContext, requestClientCertificate: false } });
    gateway = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.end('orders: 3\n');
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    dir = await mkdtemp(join(tmpdir(), 'readme-step-'));
  });

  after(async () => {
    await broker?.shutdown(1);
    await new Promise((resolve) => gateway?.close(resolve));
    await h?.close();
    pki?.remove();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function runStep(subjectToken: string, caFile = pki.caFile): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, subjectToken);
    const script = readmeStepScript();
    for (const address of [BROKER, TOKEN_FILE, GATEWAY]) assert.ok(script.includes(address), `the block uses ${address}`);
    const local = script
      .replaceAll(BROKER, `https://127.0.0.1:${broker.port}`)
      .replaceAll(TOKEN_FILE, tokenFile)
      .replaceAll(GATEWAY, `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`);
    return runShell(local, caFile);
  }

  it('exchanges the projected token over HTTPS and calls the gateway with the minted token', async () => {
    seen.length = 0;
    const result = await runStep(await h.issuer.projectedToken());
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'orders: 3\n');
    assert.equal(seen.length, 1);
    const bearer = /^Bearer (.+)$/.exec(seen[0] ?? '')?.[1];
    assert.ok(bearer !== undefined);
    assert.equal(decodeJwt(bearer).iss, PUBLIC_URL);
  });

  it('a refused exchange stops the step with the broker\'s error in its log, and the gateway is never called', async () => {
    seen.length = 0;
    const result = await runStep(await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) }));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^token exchange failed: \{"error":"invalid_request","error_description":"[^"]+","reason":"expired"\}/m);
    assert.deepEqual(seen, []);
  });

  it('without the CA in CURL_CA_BUNDLE curl refuses the broker\'s certificate: the step stops, nothing is called', async () => {
    seen.length = 0;
    const result = await runStep(await h.issuer.projectedToken(), pki.otherCaFile);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /curl: \(60\)/);
    assert.deepEqual(seen, []);
  });
});
