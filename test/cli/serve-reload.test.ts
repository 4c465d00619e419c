import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { postTokenExchange, type TokenEndpointAnswer } from '../support/token-exchange-request.js';
import { freePort } from '../support/free-port.js';
import { cliEnv, killAllCli, startCli, type CliProcess } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { createConfigMapDir, type ConfigMapDir } from '../support/config-map-dir.js';
import { eventually, metricValue } from '../support/multi-broker.js';

/*
 * The real `token-broker serve` in a child process, its configuration mounted as a ConfigMap (the kubelet's
 * `..data` layout): SIGHUP reloads it, a ConfigMap update is picked up by the watch, and a change that needs a
 * restart is refused with the broker still serving the configuration in force. Observed over HTTP.
 */

const SUBJECT_AUDIENCE = 'tyk-token-broker';

describe('serve: rules that change without a restart', { timeout: 120_000 }, () => {
  const scratch = useScratchDir('tb-serve-reload-');
  let issuer: StandInIssuer;
  let cli: CliProcess;
  let port: number;
  let map: ConfigMapDir;
  let configOf: (rules: unknown[], server?: Record<string, unknown>) => string;

  before(async () => {
    const keysDir = scratch.file('keys');
    await mkdir(keysDir);
    await writeFile(join(keysDir, 'key-1.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE });
    port = await freePort();
    const server = { host: '127.0.0.1', publicUrl: `http://127.0.0.1:${port}` };
    configOf = (rules, serverChange = {}) =>
      stringify({
        server: { ...server, ...serverChange },
        issuers: [{ name: 'test-cluster', issuer: issuer.issuer, audiences: [SUBJECT_AUDIENCE] }],
        signing: { algorithm: 'ES256', keysDir },
        rules,
        logging: { level: 'info' },
      });
    map = await createConfigMapDir(scratch.file('config'), 'broker.yaml', configOf([{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'] }]));
    cli = startCli(['serve', '--config', map.path], { env: cliEnv({ PORT: String(port) }) });
    const ready = await eventually(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        return false;
      }
    }, 20_000);
    assert.ok(ready, `the broker did not become ready\nstdout:\n${cli.stdout()}\nstderr:\n${cli.stderr()}`);
  });

  after(async () => {
    await killAllCli();
    await issuer?.close();
  });

  async function exchange(namespace: string): Promise<TokenEndpointAnswer> {
    return postTokenExchange(`http://127.0.0.1:${port}`, await issuer.projectedToken({ namespace, serviceAccount: 'runner' }));
  }

  const reloadLines = () =>
    cli
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"event":"config_reload"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  it('SIGHUP puts a new rule in force; the log line has the rule-name diff', async () => {
    assert.equal((await exchange('billing')).status, 400);
    // Written in place, not through the ConfigMap: the watch also sees it; SIGHUP makes the reload happen now.
    await map.update(configOf([
      { name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'] },
      { name: 'billing', match: { namespaces: ['billing'] }, policies: ['billing-read'] },
    ]));
    cli.child.kill('SIGHUP');
    assert.ok(await eventually(() => reloadLines().some((l) => l.result === 'success'), 10_000), `no reload logged\n${cli.stdout()}`);
    const granted = await exchange('billing');
    assert.equal(granted.status, 200);
    assert.equal(granted.body.scope, 'billing-read');
    const line = reloadLines().find((l) => l.result === 'success');
    assert.deepEqual(line?.rules, { added: ['billing'], removed: [], changed: [] });
  });

  it('a ConfigMap update alone (the ..data swap) is picked up by the watch', async () => {
    const before = reloadLines().length;
    await map.update(configOf([{ name: 'billing', match: { namespaces: ['billing'] }, policies: ['billing-read'] }]));
    assert.ok(await eventually(async () => (await exchange('payments')).status === 400, 20_000), 'payments lost its rule within 20 s');
    assert.equal((await exchange('billing')).status, 200);
    assert.ok(reloadLines().length > before);
    assert.deepEqual(reloadLines().at(-1)?.rules, { added: [], removed: ['payments-ci'], changed: [] });
  });

  it('a new listener address is refused with a clear message (the port, set by PORT, cannot move either); the broker keeps serving the configuration in force', async () => {
    await map.update(configOf([{ name: 'everyone', match: { namespaces: ['*'] }, policies: ['all'] }], { host: '0.0.0.0' }));
    cli.child.kill('SIGHUP');
    assert.ok(await eventually(() => reloadLines().some((l) => l.result === 'refused'), 10_000), `no refusal logged\n${cli.stdout()}`);
    const refused = reloadLines().find((l) => l.result === 'refused');
    assert.deepEqual((refused?.refused as { path: string }[]).map((c) => c.path), ['server.host']);
    assert.match(String(refused?.msg), /server\.host cannot change without a restart/);
    assert.equal((await exchange('payments')).status, 400, 'the refused rules are not in force');
    assert.equal((await exchange('billing')).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    assert.ok((metricValue(metrics, 'token_broker_config_reloads_total{result="refused"}') ?? 0) >= 1);
    assert.equal(metricValue(metrics, 'token_broker_config_last_reload_successful'), 0);
    assert.equal(cli.child.exitCode, null, 'still running');
  });
});
