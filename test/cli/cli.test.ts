import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, exportJWK, jwtVerify, type JSONWebKeySet } from 'jose';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { cliEnv, killAllCli, runCli, startCli, within, type CliProcess } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { freePort } from '../support/free-port.js';
import { COMMANDS } from '../../src/tools/cli/commands.js';
import { ENVIRONMENT_VARIABLES } from '../../src/server/config/environment.js';
const SUBJECT_AUDIENCE = 'tyk-token-broker';

// ---------------------------------------------------------------------------------------------------------
// Helpers: waits on a running CLI and on loopback ports (the CLI itself: test/support/cli-run.ts).

/** Waits until the process's stdout satisfies `predicate`; fails early if the process exits first. */
function waitForStdout(cli: CliProcess, predicate: (stdout: string) => boolean, ms: number, what: string): Promise<void> {
  return within(
    ms,
    what,
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate(cli.stdout())) {
          cli.child.stdout?.off('data', check);
          resolve();
        }
      };
      cli.child.stdout?.on('data', check);
      void cli.exited.then(({ code }) => {
        if (!predicate(cli.stdout())) reject(new Error(`exited (${code}) before ${what}\nstdout:\n${cli.stdout()}\nstderr:\n${cli.stderr()}`));
      });
      check();
    }),
  );
}

/** Whether a TCP connection to the loopback port is accepted (false on refusal), within 2 s. */
function accepts(port: number): Promise<boolean> {
  return within(
    2000,
    `a connection attempt to port ${port}`,
    new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    }),
  );
}

/**
 * Polls until the port refuses connections (at most `ms`). A listening socket that is being closed can still
 * complete a handshake in the kernel for a moment, so one probe right after the close could race it.
 */
async function waitUntilRefused(port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let attempt = 0; attempt < Math.ceil(ms / 100) + 1 && Date.now() < deadline; attempt++) {
    if (!(await accepts(port))) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Polls `url` until it answers `status` (at most `ms`, every 200 ms). */
async function pollUntilStatus(url: string, status: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = 'no answer';
  for (let attempt = 0; attempt < Math.ceil(ms / 200) + 1 && Date.now() < deadline; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === status) return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`${url} did not answer ${status} within ${ms} ms (last: ${last})`);
}

/** A raw socket with everything it received and a promise of its closing. */
function rawConnection(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return within(
    2000,
    `a connection to port ${port}`,
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => {
        data += chunk;
      });
      const closed = new Promise<void>((done) => socket.once('close', () => done()));
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve({ socket, received: () => data, closed });
      });
    }),
  );
}

/** Waits until data received on `socket` satisfies `predicate`; fails if the socket closes first. */
function waitForData(socket: Socket, predicate: () => boolean, ms: number, what: string): Promise<void> {
  return within(
    ms,
    what,
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        socket.off('data', check);
        resolve();
      };
      socket.on('data', check);
      socket.once('close', () => {
        if (!predicate()) reject(new Error(`the connection closed before ${what}`));
      });
      check();
    }),
  );
}

async function verifyWithBrokerJwks(base: string, token: string, audience: string) {
  const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  return { jwks, ...(await jwtVerify(token, createLocalJWKSet(jwks), { issuer: base, audience })) };
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

after(killAllCli);

// ---------------------------------------------------------------------------------------------------------

describe('token-broker: usage', () => {
  it('without a command: exit 2, usage on stderr', async () => {
    const { code, stdout, stderr } = await runCli([]);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /^Usage: token-broker <command>/);
    assert.match(stderr, /serve \[--config FILE\]/);
    assert.match(stderr, /check-config FILE/);
  });

  it('help: exit 0, usage on stdout, every command and every environment variable of the tables', async () => {
    const { code, stdout } = await runCli(['help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: token-broker <command>/);
    for (const command of COMMANDS) assert.ok(stdout.includes(`\n  ${command.synopsis}`), `help lacks ${command.name}`);
    const environment = stdout.slice(stdout.indexOf('\nEnvironment:\n'));
    for (const variable of ENVIRONMENT_VARIABLES) {
      assert.match(environment, new RegExp(`\\n  ${variable.name} +${variable.description.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`), variable.name);
    }
    assert.doesNotMatch(stdout, /refused in this version/);
    assert.match(environment, /\n  KUBECONFIG +kubernetes\.kubeconfig when the file names none/);
  });

  for (const command of COMMANDS) {
    it(`${command.name} --help: that command's usage on stdout, exit 0`, async () => {
      const [long, short] = await Promise.all([runCli([command.name, '--help']), runCli([command.name, '-h'])]);
      for (const run of [long, short]) {
        assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: '' });
        assert.equal(run.stdout, `${command.usage}\n`);
        assert.match(run.stdout, new RegExp(`^Usage: token-broker ${command.name}[ \\n]`));
      }
    });
  }

  it('an unknown command: exit 2, the command named, usage', async () => {
    const { code, stdout, stderr } = await runCli(['frobnicate']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /^token-broker: unknown command "frobnicate"\n\nUsage: token-broker/);
  });

  it('check-config without a file: exit 2', async () => {
    const { code, stderr } = await runCli(['check-config']);
    assert.equal(code, 2);
    assert.match(stderr, /^token-broker check-config: give exactly one FILE\n\nUsage: token-broker check-config FILE\n/);
  });

  it('serve with an unknown option: exit 2', async () => {
    const { code, stderr } = await runCli(['serve', '--listen', '8080']);
    assert.equal(code, 2);
    assert.match(stderr, /^token-broker: Unknown option '--listen'/);
  });
});

describe('token-broker check-config', () => {
  const scratch = useScratchDir('broker-cli-check-');

  it('the example configuration: OK on stdout, exit 0', async () => {
    const { code, stdout, stderr } = await runCli(['check-config', 'config/broker.example.yaml']);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, 'OK: config/broker.example.yaml (2 issuer(s), 6 rule(s))\n');
    assert.equal(stderr, '');
  });

  const invalidFiles: ReadonlyArray<{ name: string; file: readonly string[]; env?: Record<string, string>; problems: readonly string[] }> = [
    {
      name: 'a bad file: every problem with its path on stderr, exit 1',
      file: [
        'server:',
        '  publicUrl: https://token-broker.example',
        '  listen: 8080',
        'issuers:',
        '  - name: In_Cluster',
        '    issuer: https://kubernetes.default.svc',
        '    audiences: tyk-token-broker',
        'signing:',
        '  keysDir: /etc/token-broker/keys',
        'rules: []',
      ],
      problems: [
        'server.listen: unknown key',
        'issuers[0].name: must be lower-case letters, digits and dashes (a DNS label)',
        'issuers[0].audiences: expected array, received string',
        'rules: Too small: expected array to have >=1 items',
      ],
    },
    {
      name: 'cross-field problems and an invalid PORT together: exit 1',
      file: [
        'server: {publicUrl: "https://token-broker.example"}',
        'issuers:',
        '  - {name: a, issuer: "http://kubernetes.default.svc", audiences: [x]}',
        'rules:',
        '  - {name: r, match: {issuers: [b]}, policies: [p]}',
      ],
      env: { PORT: 'eighty' },
      problems: [
        'PORT (environment): must be an integer port from 1 to 65535, got "eighty"',
        'issuers[0].issuer: plain http is only allowed on loopback; use https, or set allowInsecureHttp: true',
        'rules[0].match.issuers[0]: no issuer is named "b"',
        'signing.keysDir: required: a directory of PKCS#8 PEM signing keys (only dev mode generates one)',
      ],
    },
  ];
  for (const [index, c] of invalidFiles.entries()) {
    it(c.name, async () => {
      const path = await scratch.write(`invalid-${index}.yaml`, [...c.file, '']);
      const { code, stdout, stderr } = await runCli(['check-config', path], { env: cliEnv(c.env) });
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.equal(stderr, [`${path}: invalid configuration`, ...c.problems.map((problem) => `  ${problem}`), ''].join('\n'));
    });
  }

  it('a missing file: exit 1, the file named', async () => {
    const path = scratch.file('nope.yaml');
    const { code, stderr } = await runCli(['check-config', path]);
    assert.equal(code, 1);
    assert.equal(stderr, `${path}: invalid configuration\n  (file): cannot read the file (ENOENT)\n`);
  });
});

describe('token-broker serve: refusing to start', () => {
  const scratch = useScratchDir('broker-cli-refuse-');
  after(killAllCli);

  it('serve --config with an invalid file: exit 2 and never listens', async () => {
    const path = await scratch.write('bad.yaml', 'server:\n  publicUrl: https://token-broker.example\nissuers: []\nrules: []\nbogus: true\n');
    const port = await freePort();
    const { code, stdout, stderr } = await runCli(['serve', '--config', path], { env: cliEnv({ PORT: String(port) }) });
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid configuration\n`));
    assert.match(stderr, /\n {2}bogus: unknown key\n/);
    assert.doesNotMatch(stdout, /listening/);
    assert.equal(await accepts(port), false, 'nothing accepts connections on the port');
  });

  it('serve --config with a keys directory holding no key: exit 2 naming signing.keysDir, never listens', async () => {
    const issuer = 'https://kubernetes.default.svc';
    const keysDir = scratch.file('empty-keys');
    await mkdir(keysDir, { recursive: true });
    const path = await scratch.write(
      'no-keys.yaml',
      `server: {host: 127.0.0.1, publicUrl: "https://token-broker.example"}\nissuers: [{name: a, issuer: "${issuer}", audiences: [x]}]\nsigning: {keysDir: "${keysDir}"}\nrules: [{name: r, policies: [p]}]\n`,
    );
    const port = await freePort();
    const { code, stdout, stderr } = await runCli(['serve', '--config', path], { env: cliEnv({ PORT: String(port) }) });
    assert.equal(code, 2);
    assert.match(stderr, /\n {2}signing\.keysDir: .*no PKCS#8 PEM private keys/);
    assert.doesNotMatch(stdout, /listening/);
    assert.equal(await accepts(port), false);
  });

  it('serve without a configuration under NODE_ENV=production: exit 2, refuses dev mode, never listens', async () => {
    const port = await freePort();
    const { code, stdout, stderr } = await runCli(['serve'], { env: cliEnv({ NODE_ENV: 'production', PORT: String(port) }) });
    assert.equal(code, 2);
    assert.equal(stderr, 'token-broker: refusing dev mode with NODE_ENV=production; pass --config FILE or set BROKER_CONFIG.\n');
    assert.doesNotMatch(stdout, /DEV MODE/);
    assert.equal(await accepts(port), false);
  });
});

describe('token-broker serve: dev mode', () => {
  let cli: CliProcess;
  let port: number;
  let base: string;
  before(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    cli = startCli(['serve'], { env: cliEnv({ PORT: String(port) }) });
    await waitForStdout(cli, (out) => out.includes('readiness:'), 20_000, 'the dev-mode banner');
  });
  after(killAllCli);

  it('prints a banner telling how to get and exchange a token on the chosen port', () => {
    const out = cli.stdout();
    assert.match(out, new RegExp(`DEV MODE on ${base}\n`));
    assert.ok(out.includes(`${base}/dev/workload-token`));
    assert.ok(out.includes(`curl -s ${base}/token -d grant_type=${GRANT_TYPE_TOKEN_EXCHANGE}`));
    assert.ok(out.includes(`-d subject_token_type=${TOKEN_TYPE_JWT}`));
    assert.ok(out.includes(`curl -s -X POST ${base}/token -H "Authorization: Bearer $TOKEN" -H 'Accept: text/plain'`));
  });

  it('does what the banner says: mint a demo workload token, exchange it (form, then Bearer + text/plain)', async () => {
    // The JSON body the banner's first curl sends, taken from the banner itself.
    const body = /-d '(\{[^']*\})'/.exec(cli.stdout())?.[1];
    assert.ok(body !== undefined, 'the banner shows the JSON body to post');
    const minted = await fetch(`${base}/dev/workload-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(minted.status, 200);
    const { token } = (await minted.json()) as { token: string };
    assert.match(token, JWT_SHAPE);

    const form = await fetch(`${base}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: token }),
    });
    assert.equal(form.status, 200);
    const exchanged = (await form.json()) as { access_token: string; issued_token_type: string; token_type: string; expires_in: number; scope: string };
    assert.equal(exchanged.issued_token_type, TOKEN_TYPE_JWT);
    assert.equal(exchanged.token_type, 'Bearer');
    assert.equal(exchanged.expires_in, 600);
    assert.equal(exchanged.scope, 'demo-policy');
    const { payload } = await verifyWithBrokerJwks(base, exchanged.access_token, 'tyk');
    assert.equal(payload.sub, 'system:serviceaccount:payments:argo-runner');
    assert.equal(payload.pol, 'demo-policy');

    const bare = await fetch(`${base}/token`, { method: 'POST', headers: { authorization: `Bearer ${token}`, accept: 'text/plain' } });
    assert.equal(bare.status, 200);
    assert.match(bare.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await bare.text();
    assert.match(text, JWT_SHAPE, 'the body is a bare JWT');
    assert.equal((await verifyWithBrokerJwks(base, text, 'tyk')).payload.pol, 'demo-policy');
  });

  it('exits 0 on SIGTERM', async () => {
    cli.child.kill('SIGTERM');
    const { code, signal } = await within(5000, 'the dev-mode broker to exit after SIGTERM', cli.exited);
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.equal(await accepts(port), false);
  });
});

describe('token-broker serve --config: a configured broker', () => {
  const scratch = useScratchDir('broker-cli-serve-');
  let issuer: StandInIssuer;
  let cli: CliProcess;
  let port: number;
  let base: string;
  let expectedKid: string;

  before(async () => {
    const keysDir = scratch.file('keys');
    await mkdir(keysDir);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    await writeFile(join(keysDir, 'key-1.pem'), privateKey, { mode: 0o600 });
    expectedKid = await calculateJwkThumbprint(await exportJWK(createPublicKey(privateKey)));

    issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE });
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = {
      server: { host: '127.0.0.1', publicUrl: base, headersTimeoutSeconds: 1, requestTimeoutSeconds: 15, shutdownTimeoutSeconds: 10 },
      issuers: [{ name: 'test-cluster', issuer: issuer.issuer, audiences: [SUBJECT_AUDIENCE] }],
      signing: { algorithm: 'ES256', keysDir },
      tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
      rules: [{ name: 'payments-ci', match: { issuers: ['test-cluster'], namespaces: ['payments'] }, policies: ['payments-read'], ttlSeconds: 300 }],
      logging: { level: 'info' },
    };
    // JSON is YAML: the file goes through the same loader as any operator's file.
    const configPath = await scratch.write('broker.yaml', `${JSON.stringify(config, null, 2)}\n`);
    cli = startCli(['serve', '--config', configPath], { env: cliEnv({ PORT: String(port) }) });
    await waitForStdout(cli, (out) => out.includes('token broker listening'), 20_000, 'the broker to listen');
  });

  after(async () => {
    await killAllCli();
    await issuer?.close();
  });

  it('becomes ready once the issuer keys are loaded', async () => {
    await pollUntilStatus(`${base}/readyz`, 200, 20_000);
    const res = await fetch(`${base}/readyz`);
    assert.deepEqual(await res.json(), {
      status: 'ready',
      checks: { 'issuer:test-cluster': { ok: true }, signingKey: { ok: true, detail: `kid ${expectedKid}` } },
    });
  });

  it('exchanges a projected token for a token signed with the key from keysDir', async () => {
    const subject = await issuer.projectedToken();
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subject }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { access_token: string; expires_in: number; scope: string };
    assert.equal(body.expires_in, 300);
    assert.equal(body.scope, 'payments-read');
    assert.equal(decodeProtectedHeader(body.access_token).kid, expectedKid);
    const { payload, jwks } = await verifyWithBrokerJwks(base, body.access_token, 'tyk');
    assert.deepEqual(jwks.keys.map((k) => k.kid), [expectedKid]);
    assert.equal(payload.sub, 'system:serviceaccount:payments:argo-runner');
  });

  it('refuses a subject token signed with a key its issuer does not publish (RFC 8693: invalid_request)', async () => {
    const forged = await issuer.sign(issuer.projectedClaims(), { key: 'unpublished' });
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: forged }),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      error: 'invalid_request',
      error_description:
        'The subject token was signed with a key its issuer does not publish (unknown "kid"). If the cluster rotated its service-account keys, retry shortly.',
      reason: 'unknown_kid',
    });
  });

  it('disconnects a client that never finishes its headers within server.headersTimeoutSeconds', async () => {
    const { socket, received, closed } = await rawConnection(port);
    socket.write('POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n');
    await within(5000, 'the broker to close a connection with incomplete headers', closed);
    assert.equal(received(), 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
  });

  it('on SIGTERM: refuses new connections, completes the request in flight, then exits 0', async () => {
    const subject = await issuer.projectedToken();
    const body = new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subject }).toString();
    const half = Math.floor(body.length / 2);
    const { socket, received, closed } = await rawConnection(port);
    // Expect: 100-continue (as curl sends for large bodies) makes the server answer as soon as it has parsed
    // the headers and handed the request to the app: proof that the request is in flight before the signal.
    socket.write(
      `POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    );
    const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
    await waitForData(socket, () => received().startsWith(CONTINUE), 5000, 'the broker to accept the request headers');
    socket.write(body.slice(0, half));

    cli.child.kill('SIGTERM');
    // The broker logs this line in the same tick as it stops listening.
    await waitForStdout(cli, (out) => out.includes('shutting down'), 5000, 'the broker to start shutting down');
    assert.equal(await waitUntilRefused(port, 3000), true, 'new connections are refused after SIGTERM');
    assert.equal(received(), CONTINUE, 'the request in flight has no final answer yet');

    socket.write(body.slice(half));
    await within(10_000, 'the in-flight request to complete and its connection to close', closed);
    const response = received().slice(CONTINUE.length);
    assert.match(response, /^HTTP\/1\.1 200 OK\r\n/);
    // A keep-alive client is told to go away with its answer rather than hold the draining process open.
    assert.match(response, /\r\nConnection: close\r\n/i);
    const json = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { access_token: string; scope: string };
    assert.match(json.access_token, JWT_SHAPE);
    assert.equal(json.scope, 'payments-read');

    const { code, signal } = await within(10_000, 'the broker to exit after draining', cli.exited);
    assert.equal(signal, null);
    assert.equal(code, 0);
  });
});
