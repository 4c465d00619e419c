import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { loadConfigFile } from '../../src/server/config/load-config.js';
import { devConfig } from '../../src/server/config/dev-config.js';
import { sinkChildOutput } from '../support/log-capture.js';
import { startStandInTyk, type StandInTyk } from '../fakes/stand-in-tyk.js';
import { errorsOf, validators } from '../tyk/tyk-schemas.js';
import { ROOT, arrayAt, at, isObject, missingToolSkip, objectAt, readText, readYaml, stringAt, type JsonObject } from './deploy-support.js';
import { freePort } from '../support/free-port.js';

/**
 * docker-compose.yml cannot be run here (no Docker engine), so it is checked statically: against the Compose
 * Specification's JSON Schema, every file it mounts or builds from, the wiring between services (the shared
 * network namespace, ports, Tyk's configuration, the generated API definition and policies), Prometheus'
 * configuration with promtool, and the demo script, run for real against a dev-mode broker and a stand-in Tyk.
 */

const COMPOSE_FILE = 'docker-compose.yml';
const COMPOSE_BROKER_CONFIG = 'deploy/compose/broker.yaml';
const API_FILE = 'deploy/compose/apps/demo.json';
const POLICIES_DIR = 'deploy/compose/policies';
const TYK_CONF = 'deploy/compose/tyk.conf';
const PROMETHEUS_CONFIG = 'deploy/compose/prometheus.yml';
const DEMO_SCRIPT = 'deploy/compose/demo.sh';

/** The commands that generate the Tyk files, exactly as deploy/compose/broker.yaml documents them. */
const API_ARGS = ['api', '--config', COMPOSE_BROKER_CONFIG, '--api-id', 'demo', '--listen-path', '/demo/', '--upstream', 'http://echo:8000', '--format', 'classic'];
const POLICIES_ARGS = ['policies', '--config', COMPOSE_BROKER_CONFIG, '--api-id', 'demo', '--out'];

const PROMTOOL_SKIP = missingToolSkip('promtool', ['--version'], "install Debian's prometheus package to check the Prometheus configuration");
const CURL_SKIP = missingToolSkip('curl', ['--version'], 'install curl to run the demo script');

const compose = readYaml(COMPOSE_FILE);
const services = objectAt(compose, 'services');
const service = (name: string) => objectAt(services, name);

/** A short-syntax bind mount `./SRC:/DST:ro`. */
interface Mount {
  readonly source: string;
  readonly target: string;
  readonly mode: string | undefined;
}

function mountsOf(name: string): Mount[] {
  const volumes = at(service(name), 'volumes');
  if (volumes === undefined) return [];
  assert.ok(Array.isArray(volumes), `${name}.volumes`);
  return volumes.map((entry) => {
    assert.equal(typeof entry, 'string', `${name}.volumes uses the short syntax`);
    const [source, target, mode, ...rest] = (entry as string).split(':');
    assert.deepEqual(rest, [], `${name}: ${String(entry)}`);
    assert.ok(source !== undefined && target !== undefined, `${name}: ${String(entry)}`);
    return { source, target, mode };
  });
}

/** The host file a container path of a service resolves to through its bind mounts, or undefined. */
function hostPathOf(name: string, containerPath: string): string | undefined {
  for (const mount of mountsOf(name)) {
    if (containerPath === mount.target) return posix.normalize(mount.source);
    if (containerPath.startsWith(`${mount.target}/`)) return posix.join(mount.source, containerPath.slice(mount.target.length + 1));
  }
  return undefined;
}

function readJson(path: string): JsonObject {
  const value: unknown = JSON.parse(readText(path));
  assert.ok(isObject(value), `${path} is a JSON object`);
  return value;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command from the repository root, its output captured (and given to the suite's log-leak check). */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  const child = spawn(command, [...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  sinkChildOutput(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment for the broker's CLI: nothing a developer's shell or the test runner set leaks in. */
function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of ['NODE_TEST_CONTEXT', 'BROKER_CONFIG', 'REDIS_URL', 'KUBECONFIG', ...(extra.PORT === undefined ? ['PORT'] : []), ...(extra.NODE_ENV === undefined ? ['NODE_ENV'] : [])]) {
    delete env[name];
  }
  return env;
}

function runTyk(args: readonly string[]): Promise<Run> {
  return run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'tyk', ...args], cliEnv(), 60_000);
}

describe('docker-compose.yml: the file', () => {
  it('is valid against the Compose Specification (test/schemas/compose-spec.json)', () => {
    const { $schema, ...schema } = JSON.parse(readFileSync(join(ROOT, 'test/schemas/compose-spec.json'), 'utf8')) as JsonObject;
    // Ajv knows draft-07 as http://json-schema.org/draft-07/schema#; the file names it by its https:// address.
    assert.equal($schema, 'https://json-schema.org/draft-07/schema');
    // strict: false because Ajv's strict mode refuses idioms of this third-party schema (union types,
    // additionalProperties in a oneOf branch without type: object); validation itself is unaffected.
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    assert.equal(validate(compose), true, JSON.stringify(validate.errors, null, 2));
    // The schema is in force: an unknown service key is refused.
    assert.equal(validate({ services: { broker: { image: 'x', helthcheck: {} } } }), false);
  });

  it('has the services of the demo and no others', () => {
    assert.equal(compose.name, 'workload-token-broker');
    assert.deepEqual(Object.keys(services).sort(), ['broker', 'demo', 'echo', 'prometheus', 'redis', 'tyk']);
  });

  it('pins every image by tag (Tyk on the v5.8 LTS line), and builds the broker from the Dockerfile', () => {
    const images = Object.fromEntries(Object.entries(services).map(([name, definition]) => [name, at(definition, 'image')]));
    assert.deepEqual(images, {
      redis: 'redis:7.4.2-alpine',
      broker: 'workload-token-broker:dev',
      tyk: 'tykio/tyk-gateway:v5.8.5',
      echo: 'traefik/whoami:v1.11.0',
      prometheus: 'prom/prometheus:v3.5.0',
      demo: 'curlimages/curl:8.11.1',
    });
    assert.match(String(images.tyk), /^tykio\/tyk-gateway:v5\.8\.\d+$/);
    assert.deepEqual(at(service('broker'), 'build'), { context: '.', dockerfile: 'Dockerfile' });
    assert.ok(statSync(join(ROOT, 'Dockerfile')).isFile());
  });

  it('mounts only files and directories that exist in the repository, read-only', () => {
    let count = 0;
    for (const name of Object.keys(services)) {
      for (const mount of mountsOf(name)) {
        count += 1;
        assert.match(mount.source, /^\.\//, `${name}: ${mount.source} is relative to the repository`);
        assert.ok(existsSync(join(ROOT, mount.source)), `${name}: ${mount.source} exists`);
        assert.equal(mount.mode, 'ro', `${name}: ${mount.source} is mounted read-only`);
        assert.ok(posix.isAbsolute(mount.target), `${name}: ${mount.target}`);
      }
    }
    assert.equal(count, 6);
    assert.ok(statSync(join(ROOT, 'deploy/compose/apps')).isDirectory());
    assert.ok(statSync(join(ROOT, POLICIES_DIR)).isDirectory());
  });
});

describe('docker-compose.yml: the broker and its network namespace', () => {
  it('runs the image in dev mode (which the image refuses by default), read-only and without capabilities', () => {
    const broker = service('broker');
    assert.deepEqual(broker.environment, { NODE_ENV: 'development', PORT: '8080' });
    assert.deepEqual(broker.command, ['serve']);
    assert.equal(broker.read_only, true);
    assert.deepEqual(broker.cap_drop, ['ALL']);
    assert.deepEqual(broker.security_opt, ['no-new-privileges:true']);
    assert.match(readText('Dockerfile'), /^ENV NODE_ENV=production$/m);
  });

  it('is healthy when /readyz answers on the dev-mode port', () => {
    const test = arrayAt(service('broker'), 'healthcheck.test');
    assert.deepEqual(test.slice(0, 3), ['CMD', 'node', '-e']);
    assert.match(String(test[3]), /fetch\('http:\/\/127\.0\.0\.1:8080\/readyz'\)/);
  });

  it('Tyk, Prometheus and the demo join the broker\'s network namespace; only the broker publishes ports, on loopback', () => {
    for (const name of ['tyk', 'prometheus', 'demo']) {
      assert.equal(service(name).network_mode, 'service:broker', name);
      assert.equal(service(name).ports, undefined, `${name}: ports belong to the namespace's owner`);
    }
    for (const name of ['redis', 'echo']) assert.equal(service(name).network_mode, undefined, name);
    const tykConf = readJson(TYK_CONF);
    const prometheusPort = Number(/--web\.listen-address=0\.0\.0\.0:(\d+)/.exec(arrayAt(service('prometheus'), 'command').join(' '))?.[1]);
    assert.deepEqual(service('broker').ports, [`127.0.0.1:${String(tykConf.listen_port)}:${String(tykConf.listen_port)}`, `127.0.0.1:${prometheusPort}:${prometheusPort}`]);
    // Two listeners in one namespace: Tyk must not take the broker's port.
    assert.notEqual(tykConf.listen_port, Number(at(service('broker'), 'environment.PORT')));
  });

  it('starts Tyk and the demo once the broker is healthy', () => {
    assert.deepEqual(service('tyk').depends_on, { broker: { condition: 'service_healthy' }, redis: { condition: 'service_started' } });
    assert.deepEqual(service('demo').depends_on, {
      broker: { condition: 'service_healthy' },
      tyk: { condition: 'service_started' },
      echo: { condition: 'service_started' },
    });
    assert.equal(service('demo').restart, 'no');
  });

  it('the configuration stated in deploy/compose/broker.yaml is the embedded dev-mode configuration', async () => {
    const config = await loadConfigFile(join(ROOT, COMPOSE_BROKER_CONFIG), {});
    const { keysDir, ...signing } = config.signing;
    assert.equal(keysDir, '/etc/token-broker/keys');
    assert.deepEqual({ ...config, signing }, devConfig(Number(at(service('broker'), 'environment.PORT'))));
  });
});

describe('docker-compose.yml: Tyk', () => {
  const tykConf = readJson(TYK_CONF);

  it('tyk.conf is JSON with the keys a file-based gateway needs', () => {
    assert.equal(tykConf.listen_port, 8081);
    assert.equal(typeof tykConf.secret, 'string');
    assert.ok((tykConf.secret as string).length >= 16);
    assert.equal(tykConf.template_path, '/opt/tyk-gateway/templates');
    assert.equal(tykConf.use_db_app_configs, false);
    assert.equal(tykConf.app_path, '/opt/tyk-gateway/apps');
    assert.deepEqual(tykConf.policies, { policy_source: 'file', policy_path: '/opt/tyk-gateway/policies' });
    assert.deepEqual(tykConf.storage, { type: 'redis', host: 'redis', port: 6379, database: 0, optimisation_max_idle: 100, optimisation_max_active: 500 });
    assert.equal(tykConf.enable_analytics, false);
  });

  it('is mounted where the image reads it, with app_path and policy_path on the generated files, and its Redis is a service', () => {
    assert.equal(hostPathOf('tyk', '/opt/tyk-gateway/tyk.conf'), TYK_CONF);
    assert.equal(hostPathOf('tyk', String(tykConf.app_path)), 'deploy/compose/apps');
    assert.equal(hostPathOf('tyk', stringAt(tykConf, 'policies.policy_path')), POLICIES_DIR);
    assert.ok(stringAt(tykConf, 'storage.host') in services);
  });

  it('the API definition is a valid classic definition that proxies to the echo service', () => {
    const api = readJson(API_FILE);
    assert.equal(validators.classic(api), true, errorsOf(validators.classic));
    assert.deepEqual(readdirSync(join(ROOT, 'deploy/compose/apps')), ['demo.json']);
    const target = new URL(stringAt(api, 'proxy.target_url'));
    assert.ok(target.hostname in services, `${target.hostname} is a compose service`);
    assert.deepEqual(at(service(target.hostname), 'command'), ['--port', target.port]);
    // The broker's JWKS at the address Tyk reaches it by in the shared namespace, base64-encoded (tyk#7461).
    assert.equal(Buffer.from(stringAt(api, 'jwt_source'), 'base64').toString('utf8'), 'http://127.0.0.1:8080/.well-known/jwks.json');
    assert.equal(api.jwt_signing_method, 'ecdsa');
  });

  it('every policy grants the API, in the API\'s org', () => {
    const api = readJson(API_FILE);
    assert.deepEqual(readdirSync(join(ROOT, POLICIES_DIR)), ['demo-policy.json']);
    const policy = readJson(`${POLICIES_DIR}/demo-policy.json`);
    assert.equal(policy.id, 'demo-policy');
    assert.equal(policy.org_id, api.org_id);
    assert.deepEqual(Object.keys(objectAt(policy, 'access_rights')), [api.api_id]);
    assert.equal(at(api, 'jwt_scope_to_policy_mapping.demo-policy'), 'demo-policy');
  });

  it('deploy/compose/broker.yaml documents the commands that generate the files', () => {
    const header = readText(COMPOSE_BROKER_CONFIG)
      .split('\n')
      .filter((line) => line.startsWith('#'))
      .map((line) => line.replace(/^#\s?/, '').replace(/\\$/, ''))
      .join(' ')
      .replace(/\s+/g, ' ');
    assert.ok(header.includes(`token-broker tyk ${API_ARGS.join(' ')} > ${API_FILE}`), header);
    assert.ok(header.includes(`token-broker tyk ${POLICIES_ARGS.join(' ')} ${POLICIES_DIR}`), header);
  });

  it('regenerating the API definition from the compose configuration gives the committed bytes', async () => {
    const result = await runTyk(API_ARGS);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, readText(API_FILE));
  });

  it('regenerating the policies from the compose configuration gives the committed files, byte for byte', async () => {
    const out = mkdtempSync(join(tmpdir(), 'compose-policies-'));
    try {
      const result = await runTyk([...POLICIES_ARGS, out]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(readdirSync(out).sort(), readdirSync(join(ROOT, POLICIES_DIR)).sort());
      for (const file of readdirSync(out)) assert.equal(readFileSync(join(out, file), 'utf8'), readText(`${POLICIES_DIR}/${file}`), file);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('docker-compose.yml: Prometheus', () => {
  const prometheus = service('prometheus');
  const command = arrayAt(prometheus, 'command').map(String);
  const containerConfig = /^--config\.file=(.+)$/.exec(command.find((arg) => arg.startsWith('--config.file=')) ?? '')?.[1] ?? '';
  const config = readYaml(PROMETHEUS_CONFIG);

  it('reads prometheus.yml from its mount', () => {
    assert.equal(containerConfig, '/etc/prometheus/deploy/compose/prometheus.yml');
    assert.equal(hostPathOf('prometheus', containerConfig), PROMETHEUS_CONFIG);
  });

  it('loads deploy/prometheus/alerts.yaml by a relative path that resolves to it in the container and in the repository', () => {
    const ruleFiles = arrayAt(config, 'rule_files').map(String);
    assert.deepEqual(ruleFiles, ['../prometheus/alerts.yaml']);
    for (const rule of ruleFiles) {
      // Prometheus and promtool resolve rule_files against the configuration file's directory.
      assert.equal(posix.join(posix.dirname(PROMETHEUS_CONFIG), rule), 'deploy/prometheus/alerts.yaml');
      assert.equal(hostPathOf('prometheus', posix.join(posix.dirname(containerConfig), rule)), 'deploy/prometheus/alerts.yaml');
    }
    assert.ok(existsSync(join(ROOT, dirname(PROMETHEUS_CONFIG), ruleFiles[0] as string)));
  });

  it('scrapes the broker at its loopback address in the shared namespace', () => {
    assert.deepEqual(config.scrape_configs, [
      { job_name: 'token-broker', metrics_path: '/metrics', static_configs: [{ targets: ['127.0.0.1:8080'], labels: { namespace: 'compose' } }] },
    ]);
    assert.deepEqual(config.global, { scrape_interval: '15s', evaluation_interval: '15s' });
  });

  it('promtool check config accepts prometheus.yml and the alert rules it loads', { skip: PROMTOOL_SKIP }, () => {
    const result = spawnSync('promtool', ['check', 'config', PROMETHEUS_CONFIG], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.error, undefined, `promtool could not run: ${String(result.error)}`);
    const output = `${result.stdout}${result.stderr}`;
    assert.equal(result.status, 0, output);
    assert.match(output, /SUCCESS: 1 rule files found/);
    assert.match(output, /SUCCESS: \d+ rules found/);
  });
});

describe('docker-compose.yml: the demo', () => {
  const script = readText(DEMO_SCRIPT);

  function defaultOf(variable: string): string {
    const found = new RegExp(`^${variable}=\\$\\{${variable}:-(.+)\\}$`, 'm').exec(script)?.[1];
    assert.ok(found !== undefined, `${variable} has a default`);
    return found;
  }

  it('runs deploy/compose/demo.sh with sh, from its mount', () => {
    assert.deepEqual(service('demo').entrypoint, ['/bin/sh', '/demo/demo.sh']);
    assert.equal(hostPathOf('demo', '/demo/demo.sh'), DEMO_SCRIPT);
    const syntax = spawnSync('sh', ['-n', DEMO_SCRIPT], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
  });

  it('its defaults are the broker\'s port, Tyk\'s listen port and the API\'s listen path', () => {
    assert.equal(defaultOf('BROKER'), `http://127.0.0.1:${String(at(service('broker'), 'environment.PORT'))}`);
    assert.equal(defaultOf('TYK'), `http://127.0.0.1:${String(readJson(TYK_CONF).listen_port)}`);
    assert.equal(defaultOf('LISTEN_PATH'), stringAt(readJson(API_FILE), 'proxy.listen_path'));
  });

  describe('run against a dev-mode broker and a stand-in Tyk loaded with the committed files', { skip: CURL_SKIP }, () => {
    let broker: ChildProcess | undefined;
    let brokerPort = 0;
    let tyk: StandInTyk;
    let gateway: Server;
    let gatewayUrl = '';
    const upstreamRequests: { path: string; authorization: string | undefined }[] = [];

    before(async () => {
      brokerPort = await freePort();
      // What the container runs (`node dist/main.js serve`, NODE_ENV=development), from source.
      broker = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
        cwd: ROOT,
        env: cliEnv({ NODE_ENV: 'development', PORT: String(brokerPort) }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      sinkChildOutput(broker);
      broker.stdout?.resume();
      broker.stderr?.resume();

      tyk = await startStandInTyk();
      // The committed definition and policies; only the JWKS address follows the broker's test port.
      const api = readJson(API_FILE);
      const jwks = `http://127.0.0.1:${brokerPort}/.well-known/jwks.json`;
      await tyk.addApi({ ...api, jwt_source: Buffer.from(jwks).toString('base64') });
      for (const file of readdirSync(join(ROOT, POLICIES_DIR))) tyk.addPolicy(readJson(`${POLICIES_DIR}/${file}`));

      // Tyk's HTTP face for the demo: /hello, and the API's listen path through the stand-in's JWT rules to an
      // echo of what the upstream would receive (Tyk strips the listen path and the token).
      const listenPath = stringAt(api, 'proxy.listen_path');
      gateway = createServer((req, res) => {
        void (async () => {
          const path = new URL(req.url ?? '/', 'http://x').pathname;
          if (path === '/hello') {
            const hello = await fetch(`${tyk.url}/hello`);
            res.writeHead(hello.status, { 'content-type': 'application/json' }).end(await hello.text());
            return;
          }
          const result = await tyk.proxy(path, req.headers.authorization);
          if (result.status !== 200) {
            res.writeHead(result.status, { 'content-type': 'application/json' }).end(JSON.stringify(result.body));
            return;
          }
          const upstreamPath = `/${path.slice(listenPath.length)}`;
          upstreamRequests.push({ path: upstreamPath, authorization: undefined });
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`GET ${upstreamPath} HTTP/1.1\nHost: ${new URL(stringAt(api, 'proxy.target_url')).host}\n`);
        })().catch((error: unknown) => res.writeHead(500).end(String(error)));
      });
      await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
      gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    });

    after(async () => {
      if (broker !== undefined && broker.exitCode === null) {
        const exited = new Promise((resolve) => broker?.once('exit', resolve));
        broker.kill('SIGTERM');
        await exited;
      }
      await new Promise<void>((resolve) => gateway.close(() => resolve()));
      await tyk.close();
    });

    it('prints each step and exits 0: workload token -> exchange -> Tyk -> echo; Tyk refuses other tokens', async () => {
      const result = await run('sh', [DEMO_SCRIPT], cliEnv({ BROKER: `http://127.0.0.1:${brokerPort}`, TYK: gatewayUrl }), 90_000);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      const out = result.stdout;
      assert.match(out, new RegExp(`"iss":"http://127\\.0\\.0\\.1:${brokerPort}/dev"`));
      assert.match(out, /"sub":"system:serviceaccount:payments:argo-runner"/);
      assert.match(out, /"access_token":"<below>","issued_token_type":"urn:ietf:params:oauth:token-type:jwt","token_type":"Bearer","expires_in":600,"scope":"demo-policy"/);
      assert.match(out, /"pol":"demo-policy"/);
      assert.match(out, /^GET \/ HTTP\/1\.1$/m);
      assert.match(out, /^Host: echo:8000$/m);
      assert.match(out, /^no token: {12}400$/m);
      assert.match(out, /^the subject token: {3}403$/m);
      assert.match(out, /^== OK: workload token -> broker -> Tyk -> echo$/m);
      // No compact JWT is printed: only decoded claims.
      assert.doesNotMatch(out, /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
      assert.deepEqual(upstreamRequests, [{ path: '/', authorization: undefined }]);
      assert.deepEqual(
        [...tyk.sessions.values()].map((s) => ({ identity: s.identity, apiId: s.apiId, policies: s.policies })),
        [{ identity: 'system:serviceaccount:payments:argo-runner', apiId: 'demo', policies: ['demo-policy'] }],
      );
    });
  });
});
