import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { runCli, killAllCli } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { freePort, redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { eventually, rawRedis, startBrokers, type MultiBroker } from '../support/multi-broker.js';
import { startAdminHarness, ADMIN_SECRET } from '../support/admin-harness.js';

const skip = redisUnavailableReason();

describe('token-broker deny', { skip }, () => {
  const scratch = useScratchDir('deny-cli-');
  let server: RedisServer;
  let raw: Redis;
  let brokers: MultiBroker;
  const prefix = `cli-${randomUUID()}:`;
  let configPath: string;

  const config = (redis: string) => [
    'server: { publicUrl: "https://broker.example" }',
    'issuers: [{ name: test-cluster, issuer: "https://issuer.example", audiences: [broker] }]',
    'rules: [{ name: everyone, policies: [read] }]',
    'signing: { keysDir: /unused }',
    redis,
    redis === '' ? '' : 'audit: { redisStream: { key: "' + prefix + 'audit" } }',
    '',
  ];

  before(async () => {
    server = await startRedisServer();
    raw = rawRedis(server.url);
    configPath = await scratch.write('broker.yaml', config(`cache: { redis: { url: "${server.url}", keyPrefix: "${prefix}" } }`));
    brokers = await startBrokers({ count: 1, config: () => ({ cache: { redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 2000 } }, denies: { static: [], pollSeconds: 300 } }) });
    await brokers.at(0).broker.refreshDenies();
    await eventually(async () => (await raw.pubsub('NUMSUB', `${prefix}deny:changes`))[1] === 1, 5000);
  });
  after(async () => {
    await killAllCli();
    await brokers.close();
    raw.disconnect();
    await server.stop();
  });

  it('add, list and remove: the replica refuses within 1 s of add and serves again after remove; each change is audited', async () => {
    const replica = brokers.at(0);
    const subject = await brokers.issuer.projectedToken({ podUid: 'pod-cli' });
    await replica.exchange(subject).expect(200);

    const added = await runCli(['deny', 'add', '--config', configPath, '--namespace', 'payments', '--service-account', 'argo-runner', '--until', '2h', '--reason', 'INC-12 runner\ncompromised', '--by', 'alice', '--format', 'json']);
    assert.equal(added.code, 0, added.stderr);
    const deny = JSON.parse(added.stdout) as { id: string; match: unknown; reason: string; createdBy: string; until: string };
    assert.deepEqual(deny.match, { namespace: 'payments', serviceAccount: 'argo-runner' });
    assert.equal(deny.reason, 'INC-12 runner compromised');
    assert.equal(deny.createdBy, 'alice');
    const auditLine = added.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.audit === true);
    assert.equal(auditLine?.event, 'deny_added');
    assert.equal(auditLine?.denyId, deny.id);

    assert.ok(await eventually(() => replica.broker.denies.snapshot.sharedDenies.some((d) => d.id === deny.id), 1000), 'the replica enforces the deny within 1 s');
    const refused = await replica.exchange(subject).expect(403);
    assert.equal(refused.body.error_description, 'An operator has denied tokens to this workload: INC-12 runner compromised');

    const listed = await runCli(['deny', 'list', '--config', configPath]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^ID\s+MATCH\s+UNTIL\s+BY\s+REASON\n/);
    assert.match(listed.stdout, new RegExp(`${deny.id}\\s+namespace=payments,serviceAccount=argo-runner\\s+\\S+Z\\s+alice\\s+INC-12 runner compromised`));
    const json = await runCli(['deny', 'list', '--config', configPath, '--format', 'json']);
    assert.deepEqual((JSON.parse(json.stdout) as { id: string }[]).map((d) => d.id), [deny.id]);

    const removed = await runCli(['deny', 'remove', '--config', configPath, deny.id, '--by', 'bob']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, `removed deny ${deny.id}\n`);
    assert.ok(await eventually(() => replica.broker.denies.snapshot.sharedDenies.length === 0, 1000));
    await replica.exchange(subject).expect(200);

    const stream = (await raw.xrange(`${prefix}audit`, '-', '+')).map(([, fields]) => JSON.parse(fields[1] as string) as Record<string, unknown>);
    assert.deepEqual(stream.map((r) => [r.event, r.denyId, r.actor]), [['deny_added', deny.id, 'alice'], ['deny_removed', deny.id, 'bob']]);

    const again = await runCli(['deny', 'remove', '--config', configPath, deny.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no deny .* in Redis/);
  });

  const usageCases: [string, string[], RegExp][] = [
    ['no sub-command', ['deny'], /give add, list or remove/],
    ['an unknown sub-command', ['deny', 'purge'], /unknown sub-command "purge"/],
    ['add without a facet', ['deny', 'add', '--config', 'CONFIG', '--until', '1h', '--reason', 'x'], /name at least one of --issuer/],
    ['add without --until', ['deny', 'add', '--config', 'CONFIG', '--namespace', 'a', '--reason', 'x'], /--until DURATION is required/],
    ['add with a duration over 30 days', ['deny', 'add', '--config', 'CONFIG', '--namespace', 'a', '--until', '31d', '--reason', 'x'], /until: must be a duration/],
    ['add with a facet with a space', ['deny', 'add', '--config', 'CONFIG', '--namespace', 'a b', '--until', '1h', '--reason', 'x'], /namespace: must be an exact name/],
    ['an unknown flag', ['deny', 'add', '--config', 'CONFIG', '--pod', 'x'], /Unknown option '--pod'/],
    ['remove without an id', ['deny', 'remove', '--config', 'CONFIG'], /give exactly one deny ID/],
    ['remove with a malformed id', ['deny', 'remove', '--config', 'CONFIG', '../x'], /is not a deny id/],
  ];
  for (const [what, args, message] of usageCases) {
    it(`exits 2 on ${what}, changing nothing`, async () => {
      const before = await raw.hlen(`${prefix}deny:entries`);
      const result = await runCli(args.map((arg) => (arg === 'CONFIG' ? configPath : arg)));
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(await raw.hlen(`${prefix}deny:entries`), before);
    });
  }

  it('exits 2 for a configuration without cache.redis, and 1 when Redis cannot be reached', async () => {
    const noRedis = await scratch.write('no-redis.yaml', config(''));
    const without = await runCli(['deny', 'list', '--config', noRedis]);
    assert.equal(without.code, 2);
    assert.match(without.stderr, /has no cache\.redis/);
    const port = await freePort();
    const unreachable = await scratch.write('unreachable.yaml', config(`cache: { redis: { url: "redis://127.0.0.1:${port}/0" } }`));
    const down = await runCli(['deny', 'add', '--config', unreachable, '--namespace', 'a', '--until', '1h', '--reason', 'x']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach Redis .* nothing was changed/);
  });
});

describe('token-broker deny --admin-url', () => {
  const scratch = useScratchDir('deny-cli-admin-');
  let started: Awaited<ReturnType<typeof startAdminHarness>>;
  let url: string;
  let tokenFile: string;

  before(async () => {
    tokenFile = await scratch.write('admin-secret', `${ADMIN_SECRET}\n`);
    started = await startAdminHarness(tokenFile);
    const address = started.server.address();
    assert.ok(address !== null && typeof address === 'object');
    url = `http://127.0.0.1:${address.port}`;
  });
  after(async () => {
    await killAllCli();
    await started.close();
  });

  it('adds, lists and removes through a broker without Redis; its public listener refuses the workload meanwhile', async () => {
    const { h } = started;
    const subject = await h.issuer.projectedToken({ podUid: 'pod-admin-cli' });
    const added = await runCli(['deny', 'add', '--admin-url', url, '--admin-token-file', tokenFile, '--namespace', 'payments', '--until', '1h', '--reason', 'INC-77', '--by', 'dave', '--format', 'json']);
    assert.equal(added.code, 0, added.stderr);
    const deny = JSON.parse(added.stdout) as { id: string; createdBy: string };
    assert.equal(deny.createdBy, 'admin:dave');
    assert.equal((await h.exchange(subject).expect(403)).body.reason, 'denied');

    const listed = await runCli(['deny', 'list', '--admin-url', url, '--admin-token-file', tokenFile]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${deny.id}\\s+namespace=payments\\s+\\S+Z\\s+admin:dave\\s+INC-77`));
    assert.match(listed.stdout, /static-freeze\s+namespace=frozen\s+until removed\s+config\s+frozen by config/);

    const removed = await runCli(['deny', 'remove', '--admin-url', url, '--admin-token-file', tokenFile, deny.id]);
    assert.equal(removed.code, 0, removed.stderr);
    await h.exchange(subject).expect(200);
  });

  it('exits 2 on an invalid deny and 1 on a wrong secret, changing nothing', async () => {
    const invalid = await runCli(['deny', 'add', '--admin-url', url, '--admin-token-file', tokenFile, '--namespace', 'a', '--until', '45d', '--reason', 'x']);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /answered 400 invalid_deny.*\n  until: must be a duration/);
    const wrongFile = await scratch.write('wrong-secret', 'not-the-admin-secret-but-long-enough-000');
    const wrong = await runCli(['deny', 'list', '--admin-url', url, '--admin-token-file', wrongFile]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /answered 401 unauthorized/);
    const both = await runCli(['deny', 'list', '--admin-url', url, '--admin-token-file', tokenFile, '--config', 'x.yaml']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /not both/);
    assert.equal(started.h.broker.denies.snapshot.sharedDenies.length, 0);
  });
});
