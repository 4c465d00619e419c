import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfigFile } from '../../src/server/config/load-config.js';
import { tyk } from '../../src/tools/cli/tyk.js';
import { errorsOf, validators } from './tyk-schemas.js';
import { REPO_ROOT, runCli, captureConsole } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';

const EXAMPLE_CONFIG = join(REPO_ROOT, 'config/broker.example.yaml');
const API_ARGS = ['--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--listen-path', '/orders/', '--upstream', 'http://orders.payments.svc:8080'];

/** `token-broker tyk ...args` as a child process, as the package would run it. */
const runTyk = (args: readonly string[]) => runCli(['tyk', ...args]);
/** The same command in this process: for the many argument cases, where a process per case only adds seconds. */
const runInProcess = (args: readonly string[]) => captureConsole(() => tyk(args));

const work = useScratchDir('tyk-cli-');
/** What the example configuration's rules can grant, worked out here independently of src/tools/tyk-kit. */
let examplePolicies: readonly string[] = [];
let exampleWarnings = '';
/** The example configuration without its policies block (nor its apis block, which needs it). */
let WHOLE_API_CONFIG = '';
before(async () => {
  const config = await loadConfigFile(EXAMPLE_CONFIG, {});
  const named = [...new Set(config.rules.flatMap((rule) => [...(rule.policies ?? []), ...(rule.requestable ?? [])]))];
  examplePolicies = named.filter((policy) => !policy.includes('{'));
  exampleWarnings = named.filter((policy) => policy.includes('{')).map(templateWarning).join('');
  // The example as committed; if it grows, the expectations above follow it.
  for (const policy of ['payments-read', 'payments-write', 'ledger-write', 'status-read']) assert.ok(examplePolicies.includes(policy), policy);
  // A configuration without a policies block, as before routes existed: every policy gets the whole --api-id API.
  const { policies: _described, apis: _served, ...withoutPolicies } = parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>;
  WHOLE_API_CONFIG = await work.write('whole-api.yaml', stringify(withoutPolicies));
});

function templateWarning(policy: string): string {
  return `token-broker tyk: warning: policy "${policy}" is a template resolved per request; it is not statically grantable and was left out\n`;
}

/** The example configuration with its rules replaced and without its policies and apis blocks, written to the work directory. */
async function exampleWithRules(file: string, rules: readonly object[]): Promise<string> {
  const { policies: _described, apis: _served, ...example } = parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>;
  const path = await work.write(file, stringify({ ...example, rules }));
  return path;
}

describe('token-broker tyk api', { concurrency: 4 }, () => {
  it('OAS by default: exit 0, one JSON document that validates against Tyk\'s schemas', async () => {
    const { code, stdout, stderr } = await runTyk(['api', ...API_ARGS]);
    assert.equal(stderr, exampleWarnings);
    assert.equal(code, 0);
    const definition: unknown = JSON.parse(stdout);
    assert.equal(validators.oasDocumentStrict(definition), true, errorsOf(validators.oasDocumentStrict));
    const jwt = (definition as { 'x-tyk-api-gateway': { server: { authentication: { securitySchemes: { jwtAuth: Record<string, unknown> } } } } })[
      'x-tyk-api-gateway'
    ].server.authentication.securitySchemes.jwtAuth;
    assert.deepEqual(jwt.jwksURIs, [{ url: 'https://token-broker.platform.svc.cluster.local/.well-known/jwks.json', cacheTimeout: '240s' }]);
    assert.equal(jwt.signingMethod, 'ecdsa');
    assert.deepEqual(jwt.allowedAudiences, ['tyk', 'tyk-internal']);
    assert.deepEqual(jwt.scopes, { claimName: 'scope', scopeToPolicyMapping: examplePolicies.map((p) => ({ scope: p, policyId: p })) });
  });

  it('classic, with name, org and cache flags: exit 0, valid classic definition, a warning about the cache', async () => {
    const { code, stdout, stderr } = await runTyk(['api', ...API_ARGS, '--format', 'classic', '--name', 'Orders API', '--org-id', 'acme', '--jwks-cache-seconds', '60']);
    assert.equal(code, 0);
    assert.equal(
      stderr,
      `${exampleWarnings}token-broker tyk: warning: classic API definitions have no per-API JWKS cache timeout; Tyk applies its gateway-wide one (240 s by default)\n`,
    );
    const definition = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(validators.classic(definition), true, errorsOf(validators.classic));
    assert.equal(definition.name, 'Orders API');
    assert.equal(definition.org_id, 'acme');
    assert.equal(Buffer.from(String(definition.jwt_source), 'base64').toString('utf8'), 'https://token-broker.platform.svc.cluster.local/.well-known/jwks.json');
  });

  it('an invalid configuration: exit 1, every problem on stderr as check-config prints them, nothing on stdout', async () => {
    const path = await work.write('bad.yaml', 'server:\n  publicUrl: not-a-url\nlisten: 8080\n');
    const expected = await loadConfigFile(path, {}).then(
      () => assert.fail('the configuration should be refused'),
      (error: unknown) => (error instanceof ConfigError ? error.message : assert.fail(String(error))),
    );
    const { code, stdout, stderr } = await runTyk(['api', ...API_ARGS.slice(2), '--config', path]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.equal(stderr, `${expected}\n`);
    assert.match(stderr, /^ {2}listen: unknown key$/m);
  });

  it('missing --api-id: exit 2 and the usage, before reading the configuration', async () => {
    const { code, stdout, stderr } = await runTyk(['api', '--config', 'no-such-file.yaml', '--listen-path', '/orders/', '--upstream', 'http://orders']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.ok(stderr.startsWith('token-broker tyk: --api-id is required\n\nUsage: token-broker tyk'), stderr);
  });

  it('an unknown option: exit 2 (parseArgs strict)', async () => {
    const { code, stderr } = await runTyk(['api', ...API_ARGS, '--jwks', 'x']);
    assert.equal(code, 2);
    assert.match(stderr, /^token-broker tyk: Unknown option '--jwks'/);
  });
});

describe('token-broker tyk policies', { concurrency: 4 }, () => {
  it('the example configuration as committed: every grantable policy from its policies block, no --api-id needed', async () => {
    const { code, stdout, stderr } = await runTyk(['policies', '--config', EXAMPLE_CONFIG]);
    assert.equal(stderr, exampleWarnings);
    assert.equal(code, 0);
    const policies = JSON.parse(stdout) as { id: string; access_rights: Record<string, { allowed_urls: { url: string; methods: string[] }[] }> }[];
    assert.deepEqual(policies.map((p) => p.id), examplePolicies);
    for (const policy of policies) assert.equal(validators.policy(policy), true, errorsOf(validators.policy));
    const byId = new Map(policies.map((p) => [p.id, p]));
    // The read-only and the read-write workload open different routes.
    assert.deepEqual(byId.get('status-read')?.access_rights.status?.allowed_urls, [{ url: '^/status/', methods: ['GET', 'HEAD'] }]);
    assert.deepEqual(byId.get('payments-write')?.access_rights.orders?.allowed_urls.flatMap((u) => u.methods), ['POST', 'PUT', 'PATCH', 'DELETE']);
  });

  it('without a policies block (as before routes): every policy the rules can grant, as a JSON array, each granting the whole --api-id API', async () => {
    const { code, stdout, stderr } = await runTyk(['policies', '--config', WHOLE_API_CONFIG, '--api-id', 'orders']);
    assert.equal(stderr, exampleWarnings);
    assert.equal(code, 0);
    const policies = JSON.parse(stdout) as { id: string; org_id: string; access_rights: Record<string, { api_id: string }> }[];
    assert.deepEqual(
      policies.map((p) => p.id),
      examplePolicies,
    );
    for (const policy of policies) {
      assert.deepEqual(Object.keys(policy.access_rights), ['orders']);
      assert.equal(policy.access_rights.orders?.api_id, 'orders');
      assert.equal(policy.org_id, 'default');
    }
  });

  it('--out DIR: one {id}.json per policy (policies.policy_path)', async () => {
    const out = work.file('policies-dir');
    const { code, stdout } = await runTyk(['policies', '--config', WHOLE_API_CONFIG, '--api-id', 'orders', '--out', out]);
    assert.equal(code, 0);
    assert.equal(stdout, `wrote ${examplePolicies.length} policies to ${out}\n`);
    assert.deepEqual((await readdir(out)).sort(), examplePolicies.map((p) => `${p}.json`).sort());
    const policy = JSON.parse(await readFile(join(out, 'status-read.json'), 'utf8')) as { id: string; access_rights: Record<string, unknown> };
    assert.equal(policy.id, 'status-read');
    assert.deepEqual(Object.keys(policy.access_rights), ['orders']);
  });

  it('templated policies are left out, each named in a warning, from policies and from the API\'s scope mapping', async () => {
    const path = await exampleWithRules('templated.yaml', [
      { name: 'teams', match: { issuers: ['in-cluster'] }, policies: ['{namespace.labels.team}-read', 'status-read'], allowedPolicies: ['*-read'] },
      { name: 'writers', match: { issuers: ['in-cluster'] }, policies: ['{namespace.labels.team}-write', 'status-read'], allowedPolicies: ['*-write', 'status-read'] },
    ]);
    const warnings = templateWarning('{namespace.labels.team}-read') + templateWarning('{namespace.labels.team}-write');

    const policies = await runTyk(['policies', '--config', path, '--api-id', 'orders']);
    assert.equal(policies.code, 0);
    assert.equal(policies.stderr, warnings);
    assert.deepEqual((JSON.parse(policies.stdout) as { id: string }[]).map((p) => p.id), ['status-read']);

    const api = await runTyk(['api', ...API_ARGS.slice(2), '--config', path, '--format', 'classic']);
    assert.equal(api.code, 0);
    assert.equal(api.stderr, warnings);
    assert.deepEqual((JSON.parse(api.stdout) as { jwt_scope_to_policy_mapping: unknown }).jwt_scope_to_policy_mapping, { 'status-read': 'status-read' });
  });
});

describe('token-broker tyk policies: the configuration\'s policies block', { concurrency: 4 }, () => {
  const described = {
    'orders-read': { apis: [{ apiId: 'orders', apiName: 'Orders', routes: [{ methods: ['GET'], path: '/orders/{id}$' }] }], rate: 5, per: 1 },
    'orders-write': {
      apis: [
        { apiId: 'orders', routes: [{ methods: ['GET', 'POST', 'DELETE'], path: '/orders/' }] },
        { apiId: 'ledger', routes: [{ methods: ['POST'], path: '/ledger/entries$' }] },
      ],
      quotaMax: 1000,
    },
  };

  async function describedConfig(file: string, rules: readonly object[]): Promise<string> {
    const example = parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>;
    const path = await work.write(file, stringify({ ...example, rules, policies: described }));
    return path;
  }

  it('without --api-id: each described policy with its APIs, routes and limits, valid against Tyk\'s policy shape', async () => {
    const path = await describedConfig('described.yaml', [
      { name: 'readers', match: { issuers: ['in-cluster'] }, policies: ['orders-read'] },
      { name: 'writers', match: { issuers: ['in-cluster'] }, policies: ['orders-write'] },
    ]);
    const { code, stdout, stderr } = await runTyk(['policies', '--config', path, '--rate', '50']);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    const policies = JSON.parse(stdout) as { id: string; rate: number; quota_max: number; access_rights: Record<string, { allowed_urls: unknown }> }[];
    assert.deepEqual(policies.map((p) => p.id), ['orders-read', 'orders-write']);
    for (const policy of policies) assert.equal(validators.policy(policy), true, errorsOf(validators.policy));
    const [read, write] = policies;
    assert.deepEqual(read?.access_rights.orders?.allowed_urls, [{ url: '^/orders/{id}$', methods: ['GET'] }]);
    assert.equal(read?.rate, 5, 'the policy\'s own rate');
    assert.deepEqual(Object.keys(write?.access_rights ?? {}), ['orders', 'ledger']);
    assert.deepEqual(write?.access_rights.ledger?.allowed_urls, [{ url: '^/ledger/entries$', methods: ['POST'] }]);
    assert.deepEqual([write?.rate, write?.quota_max], [50, 1000], '--rate for a policy that sets none');
  });

  it('a granted policy the block does not describe: --api-id grants it the whole API; without it, exit 2 naming it', async () => {
    const path = await describedConfig('partly.yaml', [{ name: 'all', match: { issuers: ['in-cluster'] }, policies: ['orders-read', 'status-read'] }]);
    const refused = await runTyk(['policies', '--config', path]);
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, '');
    assert.ok(refused.stderr.startsWith('token-broker tyk: --api-id is required: the rules grant "status-read", which the configuration\'s policies block does not describe\n'), refused.stderr);

    const granted = await runTyk(['policies', '--config', path, '--api-id', 'status']);
    assert.equal(granted.code, 0);
    const policies = JSON.parse(granted.stdout) as { id: string; access_rights: Record<string, { allowed_urls: unknown[] }> }[];
    // Rule order first, then the described policy no rule grants literally (a template could produce it).
    assert.deepEqual(policies.map((p) => [p.id, Object.keys(p.access_rights)]), [['orders-read', ['orders']], ['status-read', ['status']], ['orders-write', ['orders', 'ledger']]]);
    assert.deepEqual(policies[1]?.access_rights.status?.allowed_urls, []);
  });

  it('a bad route in the configuration: exit 1 with the path of the field', async () => {
    const example = parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>;
    const path = await work.write('bad-route.yaml', stringify({ ...example, policies: { 'orders-read': { apis: [{ apiId: 'orders', routes: [{ methods: ['GET'], path: '/orders/(?!admin)' }] }] } } }));
    const { code, stdout, stderr } = await runTyk(['policies', '--config', path]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /policies\.orders-read\.apis\[0\]\.routes\[0\]\.path: uses lookahead or lookbehind, which Tyk's regular expressions \(RE2\) do not have/);
  });
});

describe('token-broker tyk, in process: arguments and outcomes', () => {
  it('a missing configuration file: exit 1', async () => {
    const { code, stdout, stderr } = await runInProcess(['api', ...API_ARGS.slice(2), '--config', work.file('absent.yaml')]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.equal(stderr, `${work.file('absent.yaml')}: invalid configuration\n  (file): cannot read the file (ENOENT)\n`);
  });

  const apiUsageErrors: readonly [string, readonly string[], string][] = [
    ['tyk api, missing --api-id', ['api', '--config', EXAMPLE_CONFIG, '--listen-path', '/orders/', '--upstream', 'http://orders'], '--api-id is required'],
    ['tyk api, missing --config', ['api', '--api-id', 'orders', '--listen-path', '/orders/', '--upstream', 'http://orders'], '--config is required'],
    ['tyk api, missing --upstream', ['api', '--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--listen-path', '/orders/'], '--upstream is required'],
    ['tyk api, an unknown format', ['api', ...API_ARGS, '--format', 'swagger'], '--format must be oas or classic, got "swagger"'],
    ['tyk api, a listen path without a leading slash', ['api', ...API_ARGS, '--listen-path', 'orders/'], '--listen-path must be a path starting with "/", such as /orders/, got "orders/"'],
    ['tyk api, a non-http upstream', ['api', ...API_ARGS, '--upstream', 'ftp://orders'], '--upstream must be an http(s) URL, got "ftp://orders"'],
    ['tyk api, a zero cache lifetime', ['api', ...API_ARGS, '--jwks-cache-seconds', '0'], '--jwks-cache-seconds must be an integer from 1 to 86400, got "0"'],
    ['tyk api, an API id with a slash', ['api', ...API_ARGS, '--api-id', 'a/b'], '--api-id must be letters, digits, ".", "_" and "-", got "a/b"'],
    ['tyk, an unknown subcommand', ['keys'], 'unknown subcommand "keys"'],
    ['tyk, no subcommand', [], 'missing subcommand'],
  ];
  for (const [name, args, message] of apiUsageErrors) {
    it(`${name}: exit 2 and the usage, without reading the configuration`, async () => {
      const { code, stdout, stderr } = await runInProcess(args);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.ok(stderr.startsWith(`token-broker tyk: ${message}\n\nUsage: token-broker tyk`), stderr);
    });
  }

  it('tyk api without --listen-path: the listen path of the API in the configuration\'s apis block', async () => {
    const { code, stdout } = await runInProcess(['api', '--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--upstream', 'http://orders.payments.svc:8080']);
    assert.equal(code, 0);
    const definition = JSON.parse(stdout) as { 'x-tyk-api-gateway': { server: { listenPath: { value: string } } } };
    assert.equal(definition['x-tyk-api-gateway'].server.listenPath.value, '/orders/');
  });

  // Argument lists are built at run time: WHOLE_API_CONFIG is written by before().
  const listenPathErrors: readonly [string, () => readonly string[], string][] = [
    ['a --listen-path other than the apis block\'s', () => ['api', ...API_ARGS, '--listen-path', '/shop/'], '--listen-path /shop/ is not where the configuration\'s apis block serves "orders" (/orders/)'],
    ['no --listen-path and no apis block', () => ['api', '--config', WHOLE_API_CONFIG, '--api-id', 'orders', '--upstream', 'http://orders'], '--listen-path is required: the configuration\'s apis block does not list "orders"'],
  ];
  for (const [name, args, message] of listenPathErrors) {
    it(`tyk api, ${name}: exit 2 and the usage, and no definition`, async () => {
      const { code, stdout, stderr } = await runInProcess(args());
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.ok(stderr.startsWith(`token-broker tyk: ${message}\n\nUsage: token-broker tyk`), stderr);
    });
  }

  it('record format with limits: one object id -> policy', async () => {
    const { code, stdout } = await runInProcess([
      'policies', '--config', WHOLE_API_CONFIG, '--api-id', 'orders', '--api-name', 'Orders', '--org-id', 'acme', '--format', 'record',
      '--rate', '2.5', '--per', '10', '--quota-max', '1000', '--quota-renewal-rate', '86400',
    ]);
    assert.equal(code, 0);
    const record = JSON.parse(stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(record), examplePolicies);
    assert.deepEqual(record['ledger-write'], {
      id: 'ledger-write',
      name: 'ledger-write',
      org_id: 'acme',
      active: true,
      rate: 2.5,
      per: 10,
      quota_max: 1000,
      quota_renewal_rate: 86400,
      throttle_interval: -1,
      throttle_retry_limit: -1,
      max_query_depth: -1,
      key_expires_in: 0,
      access_rights: { orders: { api_id: 'orders', api_name: 'Orders', versions: ['Default'], allowed_urls: [] } },
      tags: ['workload-token-broker'],
    });
  });

  it('--format record --out DIR: DIR/policies.json (policies.policy_record_name)', async () => {
    const out = work.file('policies-record');
    const { code, stdout } = await runInProcess(['policies', '--config', WHOLE_API_CONFIG, '--api-id', 'orders', '--format', 'record', '--out', out]);
    assert.equal(code, 0);
    assert.equal(stdout, `wrote ${examplePolicies.length} policies to ${join(out, 'policies.json')}\n`);
    assert.deepEqual(await readdir(out), ['policies.json']);
    assert.deepEqual(Object.keys(JSON.parse(await readFile(join(out, 'policies.json'), 'utf8')) as object), examplePolicies);
  });

  it('a policy ID that cannot be a file name: exit 1 with --out, and the record format still works', async () => {
    const path = await exampleWithRules('slash.yaml', [{ name: 'odd', match: { issuers: ['in-cluster'] }, policies: ['team/read'] }]);
    const out = work.file('odd');
    const dir = await runInProcess(['policies', '--config', path, '--api-id', 'orders', '--out', out]);
    assert.equal(dir.code, 1);
    assert.equal(dir.stderr, 'token-broker tyk: policy ID "team/read" cannot be a file name; use --format record\n');
    const record = await runInProcess(['policies', '--config', path, '--api-id', 'orders', '--format', 'record', '--out', out]);
    assert.equal(record.code, 0);
    assert.deepEqual(Object.keys(JSON.parse(await readFile(join(out, 'policies.json'), 'utf8')) as object), ['team/read']);
  });

  const policiesUsageErrors: readonly [string, readonly string[], string][] = [
    ['an unknown format', ['policies', '--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--format', 'yaml'], '--format must be dir or record, got "yaml"'],
    ['a zero quota', ['policies', '--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--quota-max', '0'], '--quota-max must be -1 (unlimited) or at least 1, got "0"'],
    ['a negative rate', ['policies', '--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--rate=-1'], '--rate must be a positive number, got "-1"'],
    ['a blank API name', ['policies', '--config', EXAMPLE_CONFIG, '--api-id', 'orders', '--api-name', ' '], '--api-name must not be blank'],
  ];
  for (const [name, args, message] of policiesUsageErrors) {
    it(`tyk policies, ${name}: exit 2`, async () => {
      const { code, stdout, stderr } = await runInProcess(args);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.ok(stderr.startsWith(`token-broker tyk: ${message}\n\nUsage: token-broker tyk`), stderr);
    });
  }

  it('tyk policies, a bad configuration: exit 1', async () => {
    const path = await work.write('bad-policies.yaml', 'rules: []\n');
    const { code, stdout, stderr } = await runInProcess(['policies', '--config', path, '--api-id', 'orders']);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.ok(stderr.startsWith(`${path}: invalid configuration\n`), stderr);
  });
});
