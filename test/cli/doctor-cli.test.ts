import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { doctor, DOCTOR_USAGE } from '../../src/tools/cli/doctor.js';
import { startChain, type Chain } from '../doctor/chain-fixture.js';
import { runCli, captureConsole } from '../support/cli-run.js';

/** `token-broker doctor ...args` as a child process, as the package would run it. */
const runDoctor = (args: readonly string[]) => runCli(['doctor', ...args]);
/** The same command in this process: for argument and file cases. */
const runInProcess = (args: readonly string[]) => captureConsole(() => doctor(args, {}));

const statusAndName = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((line) => /^(OK|WARN|FAIL) +([^:]+):/.exec(line)?.slice(1, 3).join(' ') ?? `(continued) ${line.trim()}`);

let chain: Chain;
let configPath: string;
before(async () => {
  chain = await startChain();
  configPath = await chain.writeConfig('broker.yaml');
});
after(async () => {
  await chain.close();
});

describe('token-broker doctor (spawned)', () => {
  it('the whole chain in order: one OK line per check, exit 0, the secret never printed', async () => {
    const { code, stdout, stderr } = await runDoctor(['--config', configPath, '--tyk-url', chain.tyk.url, '--tyk-secret-file', chain.secretFile, '--api-id', 'orders']);
    assert.equal(stderr, '');
    assert.equal(code, 0, stdout);
    assert.deepEqual(statusAndName(stdout), [
      'OK config',
      'OK issuer test-cluster',
      'OK clock test-cluster',
      'OK signing-keys',
      'OK pre-publish',
      'OK broker-jwks',
      'OK tyk',
      'OK tyk-policies',
      'OK tyk-api orders',
    ]);
    assert.equal(stdout.split('\n')[0], `OK   config: ${configPath} is valid (1 issuer(s), 2 rule(s))`);
    assert.equal(stdout.includes(chain.tyk.secret), false);
  });

  it('a policy missing in Tyk: the FAIL line names it, exit 1', async () => {
    chain.tyk.removePolicy('status-read');
    try {
      const { code, stdout } = await runDoctor(['--config', configPath, '--tyk-url', chain.tyk.url, '--tyk-secret-file', chain.secretFile]);
      assert.equal(code, 1);
      assert.match(stdout, /^FAIL tyk-policies: policies the rules can grant are missing in Tyk: status-read \(1 of 3\); /m);
      assert.deepEqual(statusAndName(stdout).filter((line) => !line.startsWith('OK')), ['FAIL tyk-policies']);
    } finally {
      await chain.resetTyk();
    }
  });

  it('a short pre-publish window: WARN lines, exit 0', async () => {
    const path = await chain.writeConfig('short-window.yaml', (input) => ({ ...input, signing: { ...input.signing, prePublishSeconds: 120 } }));
    const { code, stdout } = await runDoctor(['--config', path, '--tyk-url', chain.tyk.url, '--tyk-secret-file', chain.secretFile]);
    assert.equal(code, 0, stdout);
    assert.deepEqual(statusAndName(stdout).filter((line) => !line.startsWith('OK')), ['WARN pre-publish', 'WARN tyk-api orders']);
  });

  it('an invalid configuration: FAIL with every problem, nothing else checked, exit 1', async () => {
    const path = join(chain.workDir, 'bad.yaml');
    await writeFile(path, 'server:\n  publicUrl: not-a-url\nlisten: 8080\n');
    const { code, stdout } = await runDoctor(['--config', path]);
    assert.equal(code, 1);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', new RegExp(`^FAIL config: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is invalid \\(\\d+ problem\\(s\\)\\) -> fix the fields below; token-broker check-config FILE prints the same$`));
    assert.ok(lines.includes('       listen: unknown key'), stdout);
    assert.ok(lines.slice(1).every((line) => line.startsWith('       ')), stdout);
  });
});

describe('token-broker doctor (arguments and files)', () => {
  const usage = (message: string) => `token-broker doctor: ${message}\n\n${DOCTOR_USAGE}\n`;
  const cases: readonly { name: string; args: () => string[]; stderr: string }[] = [
    { name: 'no --config', args: () => [], stderr: usage('--config FILE is required') },
    { name: '--tyk-url without a secret file', args: () => ['--config', configPath, '--tyk-url', chain.tyk.url], stderr: usage('--tyk-url and --tyk-secret-file go together') },
    { name: 'a secret file without --tyk-url', args: () => ['--config', configPath, '--tyk-secret-file', chain.secretFile], stderr: usage('--tyk-url and --tyk-secret-file go together') },
    { name: '--api-id without --tyk-url', args: () => ['--config', configPath, '--api-id', 'orders'], stderr: usage('--api-id needs --tyk-url') },
    { name: 'a --tyk-url that is no URL', args: () => ['--config', configPath, '--tyk-url', 'tyk:8080', '--tyk-secret-file', chain.secretFile], stderr: usage('--tyk-url must be an http(s) URL, got "tyk:8080"') },
    { name: 'a bad --timeout-seconds', args: () => ['--config', configPath, '--timeout-seconds', '0'], stderr: usage('--timeout-seconds must be a number above 0 and at most 120, got "0"') },
    { name: 'an unknown option', args: () => ['--config', configPath, '--verbose'], stderr: usage('Unknown option \'--verbose\'') },
  ];
  for (const c of cases) {
    it(`${c.name}: exit 2 with the usage on stderr`, async () => {
      const { code, stdout, stderr } = await runInProcess(c.args());
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.equal(stderr, c.stderr);
    });
  }

  it('help: the usage on stdout, exit 0', async () => {
    assert.deepEqual(await runInProcess(['help']), { code: 0, stdout: `${DOCTOR_USAGE}\n`, stderr: '' });
  });

  it('an unreadable or empty secret file: FAIL, the other checks still run, exit 1', async () => {
    const missing = await runInProcess(['--config', configPath, '--tyk-url', chain.tyk.url, '--tyk-secret-file', join(chain.workDir, 'nope')]);
    assert.equal(missing.code, 1);
    assert.deepEqual(statusAndName(missing.stdout), ['OK config', 'FAIL tyk-secret', 'OK issuer test-cluster', 'OK clock test-cluster', 'OK signing-keys', 'OK pre-publish', 'OK broker-jwks']);
    assert.match(missing.stdout, /^FAIL tyk-secret: cannot read --tyk-secret-file .*nope \(ENOENT\) -> give a file holding the gateway secret$/m);

    const empty = join(chain.workDir, 'empty-secret');
    await writeFile(empty, ' \n');
    const blank = await runInProcess(['--config', configPath, '--tyk-url', chain.tyk.url, '--tyk-secret-file', empty]);
    assert.equal(blank.code, 1);
    assert.match(blank.stdout, /^FAIL tyk-secret: --tyk-secret-file .*empty-secret is empty -> give a file holding the gateway secret$/m);
  });
});
