import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { defaultConfig, startHarness, type Harness } from '../support/broker-harness.js';
import { captureLogs } from '../support/log-capture.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { createConfigMapDir } from '../support/config-map-dir.js';
import { eventually, metricValue } from '../support/multi-broker.js';
import { watchConfigFile, type ConfigFileReloader, type ReloadAttempt } from '../../src/server/config/config-file-reloader.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { recordConfigReload } from '../../src/server/observability/metrics.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/*
 * watchConfigFile driving a real broker over HTTP (supertest): a valid file is put in force whole, an invalid or
 * restart-only change keeps the configuration in force, each attempt is one log line and one count, and a
 * ConfigMap update (the kubelet's `..data` swap) is picked up by the watch.
 */

const PAYMENTS_ONLY: BrokerConfigInput['rules'] = [{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'] }];
const BILLING_ONLY: BrokerConfigInput['rules'] = [{ name: 'billing-only', match: { namespaces: ['billing'] }, policies: ['billing-read'] }];

interface Setup {
  readonly h: Harness;
  readonly reloader: ConfigFileReloader;
  readonly logs: ReturnType<typeof captureLogs>;
  readonly attempts: Exclude<ReloadAttempt, { result: 'unchanged' }>[];
  readonly base: BrokerConfigInput;
  readonly text: (change?: Partial<BrokerConfigInput>) => string;
}

const scratch = useScratchDir('tb-config-reload-');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function setup(path: (text: string) => Promise<string>, options: { watch?: boolean } = {}): Promise<Setup & { path: string }> {
  const h = await startHarness({ config: () => ({ rules: PAYMENTS_ONLY }) });
  closers.push(() => h.close());
  await h.broker.warmUp();
  const base = { ...defaultConfig(h.issuer.issuer), rules: PAYMENTS_ONLY };
  const text = (change: Partial<BrokerConfigInput> = {}) => `${JSON.stringify({ ...base, ...change }, null, 2)}\n`;
  const file = await path(text());
  const logs = captureLogs();
  const attempts: Exclude<ReloadAttempt, { result: 'unchanged' }>[] = [];
  const reloader = watchConfigFile({
    path: file,
    env: {},
    inForce: () => h.broker.config(),
    apply: (next) => h.broker.reconfigure(next),
    onAttempt: (attempt) => {
      attempts.push(attempt);
      recordConfigReload(h.broker.metrics, attempt.result);
    },
    logger: logs.logger,
    rescanIntervalMs: 0,
    watch: options.watch ?? false,
  });
  closers.push(() => reloader.close());
  return { h, reloader, logs, attempts, base, text, path: file };
}

const metrics = async (h: Harness) => (await h.http.get('/metrics').expect(200)).text;

describe('config reload: from the file to the exchange', () => {
  it('SIGHUP with new rules: in force for the next exchange, logged with the rule-name diff and hashes, counted', async () => {
    const s = await setup((text) => scratch.write('a.yaml', text));
    const subject = await s.h.issuer.projectedToken({ namespace: 'billing', serviceAccount: 'reporter' });
    await s.h.exchange(subject).expect(400);
    const hashBefore = (await metrics(s.h)).match(/token_broker_config_info\{hash="([0-9a-f]{12})"\} 1/)?.[1];
    assert.ok(hashBefore !== undefined);

    await writeFile(s.path, s.text({ rules: BILLING_ONLY }));
    const attempt = await s.reloader.reload('signal');
    assert.equal(attempt.result, 'success');
    const granted = await s.h.exchange(subject).expect(200);
    assert.equal(granted.body.scope, 'billing-read');
    await s.h.exchange(await s.h.issuer.projectedToken()).expect(400); // payments lost its rule

    const line = s.logs.lines.find((l) => l.event === 'config_reload');
    assert.ok(line !== undefined);
    assert.equal(line.result, 'success');
    assert.equal(line.trigger, 'signal');
    assert.deepEqual(line.rules, { added: ['billing-only'], removed: ['payments-ci'], changed: [] });
    assert.equal(line.previousHash, hashBefore);
    const text = await metrics(s.h);
    assert.equal(metricValue(text, 'token_broker_config_reloads_total{result="success"}'), 1);
    assert.equal(metricValue(text, `token_broker_config_info{hash="${String(line.hash)}"}`), 1);
    assert.ok(!text.includes(`hash="${hashBefore}"`), 'the old hash\'s series is gone');
    assert.equal(metricValue(text, 'token_broker_config_last_reload_successful'), 1);
  });

  it('an invalid file is refused whole: the old rules keep answering, the problems are logged, the gauge says so', async () => {
    const s = await setup((text) => scratch.write('b.yaml', text));
    const subject = await s.h.issuer.projectedToken();
    await writeFile(s.path, s.text({ rules: [{ name: 'Bad Name', match: {}, policies: ['x'] }] }));
    const attempt = await s.reloader.reload('signal');
    assert.equal(attempt.result, 'invalid');
    assert.equal((await s.h.exchange(subject).expect(200)).body.scope, 'payments-read');
    const line = s.logs.lines.find((l) => l.event === 'config_reload');
    assert.equal(line?.result, 'invalid');
    assert.deepEqual(line?.problems, [{ path: 'rules[0].name', message: 'must be lower-case letters, digits and dashes (a DNS label)' }]);
    const text = await metrics(s.h);
    assert.equal(metricValue(text, 'token_broker_config_reloads_total{result="invalid"}'), 1);
    assert.equal(metricValue(text, 'token_broker_config_last_reload_successful'), 0);
  });

  it('a file re-read that finds nothing new is neither logged nor counted; a change after an invalid file is', async () => {
    const s = await setup((text) => scratch.write('c.yaml', text));
    assert.equal((await s.reloader.reload('file')).result, 'unchanged');
    await writeFile(s.path, 'rules: [');
    assert.equal((await s.reloader.reload('file')).result, 'invalid');
    assert.equal((await s.reloader.reload('file')).result, 'unchanged', 'the same broken text is reported once');
    await writeFile(s.path, s.text({ rules: BILLING_ONLY }));
    assert.equal((await s.reloader.reload('file')).result, 'success');
    assert.deepEqual(s.attempts.map((a) => a.result), ['invalid', 'success']);
    assert.equal(s.logs.lines.filter((l) => l.event === 'config_reload').length, 2);
  });

  it('a file put back as it was after a refused change is reported as a success, and clears the failure gauge', async () => {
    const s = await setup((text) => scratch.write('d.yaml', text));
    await writeFile(s.path, s.text({ server: { port: 9999, publicUrl: 'https://token-broker.test' } }));
    assert.equal((await s.reloader.reload('file')).result, 'refused');
    assert.equal(metricValue(await metrics(s.h), 'token_broker_config_last_reload_successful'), 0);
    await writeFile(s.path, s.text());
    assert.equal((await s.reloader.reload('file')).result, 'success');
    assert.equal(metricValue(await metrics(s.h), 'token_broker_config_last_reload_successful'), 1);
    assert.equal((await s.reloader.reload('file')).result, 'unchanged');
  });

  it('follows a ConfigMap update (the kubelet\'s ..data symlink swap) through the watch', async () => {
    let map: Awaited<ReturnType<typeof createConfigMapDir>> | undefined;
    const s = await setup(async (text) => (map = await createConfigMapDir(scratch.file('configmap'), 'broker.yaml', text)).path, { watch: true });
    const subject = await s.h.issuer.projectedToken({ namespace: 'billing', serviceAccount: 'reporter' });
    await s.h.exchange(subject).expect(400);
    await map?.update(s.text({ rules: BILLING_ONLY }));
    assert.ok(await eventually(() => s.attempts.length > 0, 10_000), 'the watch reloaded within 10 s');
    assert.equal(s.attempts[0]?.result, 'success');
    assert.equal((await s.h.exchange(subject).expect(200)).body.scope, 'billing-read');
  });
});

describe('config reload: an exchange in flight', () => {
  it('finishes under the configuration it started with; the next one uses the new configuration', async () => {
    // A JWKS endpoint in front of the stand-in's that holds its answer until the test lets it go.
    let release: (() => void) | undefined;
    let held = false;
    let target = '';
    const proxy = createServer((_req, res: ServerResponse) => {
      held = true;
      release = () => void fetch(target).then(async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => proxy.close(() => resolve())));
    const jwksUri = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/jwks`;
    const h = await startHarness({ config: (issuerUrl) => ({ rules: PAYMENTS_ONLY, issuers: [{ ...defaultConfig(issuerUrl).issuers[0], name: 'test-cluster', jwksUri }] as BrokerConfigInput['issuers'] }) });
    closers.push(() => h.close());
    target = h.issuer.jwksUri;

    const subject = await h.issuer.projectedToken();
    const inFlight = h.exchange(subject).then((res) => res);
    assert.ok(await eventually(() => held, 10_000), 'the exchange is waiting for the issuer\'s keys');
    const next = validateConfig({ ...defaultConfig(h.issuer.issuer), issuers: h.broker.config().issuers, rules: BILLING_ONLY });
    assert.ok(next.ok);
    const outcome = h.broker.reconfigure(next.config);
    assert.equal(outcome.applied, true);
    release?.();
    const finished = await inFlight;
    assert.equal(finished.status, 200, 'granted by the rules it started under');
    assert.equal(finished.body.scope, 'payments-read');
    await h.exchange(await h.issuer.projectedToken({ podUid: 'another-pod' })).expect(400);
  });
});
