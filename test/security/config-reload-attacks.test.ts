import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import fc from 'fast-check';
import { defaultConfig, startHarness, type Harness } from '../support/broker-harness.js';
import { captureLogs } from '../support/log-capture.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { eventually } from '../support/multi-broker.js';
import { watchConfigFile, type ConfigFileReloader, type ReloadAttempt } from '../../src/server/config/config-file-reloader.js';
import type { ConfigEnvironment } from '../../src/server/config/environment.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/*
 * A configuration reload as an attack path: what someone who can write the file (or send SIGHUP, or race a
 * writer) could try. A reload never moves the listener or the Redis connection, never puts a half-written file in
 * force, follows the path the operator configured (as the kubelet's symlinks do), never logs a secret from the
 * file, and a storm of triggers makes a bounded number of reloads. The invariant (docs/threat-model.md): a token
 * is served only if the configuration in force grants it.
 */

const PAYMENTS: BrokerConfigInput['rules'] = [{ name: 'payments-ci', match: { namespaces: ['payments'], serviceAccounts: ['argo-*'] }, policies: ['payments-read'] }];
const BILLING: BrokerConfigInput['rules'] = [{ name: 'billing-only', match: { namespaces: ['billing'] }, policies: ['billing-read'] }];

const scratch = useScratchDir('tb-reload-attacks-');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

interface Setup {
  readonly h: Harness;
  readonly reloader: ConfigFileReloader;
  readonly logs: ReturnType<typeof captureLogs>;
  readonly attempts: Exclude<ReloadAttempt, { result: 'unchanged' }>[];
  readonly path: string;
  readonly yaml: (change?: Partial<BrokerConfigInput>) => string;
}

let files = 0;
async function setup(options: { extra?: Partial<BrokerConfigInput>; env?: ConfigEnvironment; watch?: boolean } = {}): Promise<Setup> {
  const h = await startHarness({ config: () => ({ rules: PAYMENTS, ...options.extra }) });
  closers.push(() => h.close());
  await h.broker.warmUp();
  const base = { ...defaultConfig(h.issuer.issuer), rules: PAYMENTS, ...options.extra };
  const yaml = (change: Partial<BrokerConfigInput> = {}) => stringify({ ...base, ...change });
  const dir = scratch.file(`case-${++files}`);
  await mkdir(dir);
  const path = `${dir}/broker.yaml`;
  await writeFile(path, yaml());
  const logs = captureLogs();
  const attempts: Exclude<ReloadAttempt, { result: 'unchanged' }>[] = [];
  const reloader = watchConfigFile({
    path,
    env: options.env ?? {},
    inForce: () => h.broker.config(),
    apply: (next) => h.broker.reconfigure(next),
    onAttempt: (attempt) => void attempts.push(attempt),
    logger: logs.logger,
    rescanIntervalMs: 0,
    watch: options.watch ?? false,
  });
  closers.push(() => reloader.close());
  return { h, reloader, logs, attempts, path, yaml };
}

/** Still granted under the original rules: the configuration in force did not change. */
async function stillPaymentsOnly(h: Harness): Promise<void> {
  assert.equal((await h.exchange(await h.issuer.projectedToken()).expect(200)).body.scope, 'payments-read');
  await h.exchange(await h.issuer.projectedToken({ namespace: 'billing', serviceAccount: 'reporter' })).expect(400);
}

describe('attack: a reload that moves what cannot move live', () => {
  it('a new listener port and host, with a rule change alongside: refused whole, naming the fields; nothing changes', async () => {
    const s = await setup();
    await writeFile(s.path, s.yaml({ server: { port: 1, host: '0.0.0.0', publicUrl: 'https://token-broker.test' }, rules: BILLING }));
    const attempt = await s.reloader.reload('signal');
    assert.equal(attempt.result, 'refused');
    assert.deepEqual(attempt.result === 'refused' && attempt.refused.map((c) => c.path), ['server.port']);
    await stillPaymentsOnly(s.h);
    const line = s.logs.lines.find((l) => l.event === 'config_reload');
    assert.match(String(line?.msg), /server\.port cannot change without a restart; the configuration in force is kept/);
    assert.equal(s.h.broker.config().server.port, 8080);
  });

  it('another Redis URL with a password: refused by path, and neither password reaches the log', async () => {
    const s = await setup({ extra: { cache: { redis: { url: 'redis://:first-secret-pw@127.0.0.1:1/0', commandTimeoutMs: 50 } } } });
    await writeFile(s.path, s.yaml({ cache: { redis: { url: 'redis://:second-secret-pw@10.9.9.9:6379/0', commandTimeoutMs: 50 } }, rules: BILLING }));
    const attempt = await s.reloader.reload('signal');
    assert.equal(attempt.result, 'refused');
    const logged = s.logs.raw.join('\n');
    assert.match(logged, /cache\.redis\.url/);
    assert.ok(!logged.includes('first-secret-pw') && !logged.includes('second-secret-pw'), 'no password in the log');
    assert.equal(s.h.broker.config().rules[0]?.name, 'payments-ci');
  });

  it('REDIS_URL overrides the file on reload as at start-up: a file that only edits its Redis URL changes nothing', async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:1/0' };
    const s = await setup({ extra: { cache: { redis: { url: env.REDIS_URL, commandTimeoutMs: 50 } } }, env });
    await writeFile(s.path, s.yaml({ cache: { redis: { url: 'redis://10.9.9.9:6379/0', commandTimeoutMs: 50 } }, rules: BILLING }));
    assert.equal((await s.reloader.reload('signal')).result, 'success');
    assert.equal(s.h.broker.config().cache.redis?.url, env.REDIS_URL);
  });
});

describe('attack: the file swapped under the broker', () => {
  it('a symlink to a file elsewhere is followed (the path the operator configured, as with the kubelet\'s links)', async () => {
    const s = await setup();
    const elsewhere = await scratch.write('elsewhere.yaml', s.yaml({ rules: BILLING }));
    await unlink(s.path);
    await symlink(elsewhere, s.path);
    assert.equal((await s.reloader.reload('signal')).result, 'success');
    assert.equal(s.h.broker.config().rules[0]?.name, 'billing-only');
  });

  it('a symlink to a directory, or one that leads nowhere: invalid, the configuration in force stays', async () => {
    const s = await setup();
    for (const target of [scratch.path, scratch.file('does-not-exist.yaml')]) {
      await unlink(s.path);
      await symlink(target, s.path);
      const attempt = await s.reloader.reload('signal');
      assert.equal(attempt.result, 'invalid');
      await stillPaymentsOnly(s.h);
    }
    assert.deepEqual(
      s.attempts.map((a) => a.result === 'invalid' && a.problems[0]?.message),
      ['cannot read the file (EISDIR)', 'cannot read the file (ENOENT)'],
    );
  });

  it('a file cut off mid-write is never put in force: at every cut that is not a line end, the old rules stay', async () => {
    const s = await setup();
    const full = s.yaml({ rules: [...BILLING, { name: 'extra', match: { namespaces: ['billing'], serviceAccounts: ['reporter'] }, policies: ['billing-admin'] }] });
    const cuts = [...full.matchAll(/[^\n]/g)].map((m) => m.index).filter((i) => i > 0);
    for (const cut of cuts.filter((_, i) => i % 17 === 0)) {
      await writeFile(s.path, full.slice(0, cut));
      const attempt = await s.reloader.reload('signal');
      assert.equal(attempt.result, 'invalid', `cut at ${cut}`);
    }
    assert.equal(s.h.broker.config().rules[0]?.name, 'payments-ci');
    await stillPaymentsOnly(s.h);
    await writeFile(s.path, full);
    assert.equal((await s.reloader.reload('signal')).result, 'success', 'the whole file, once written, is');
  });

  it('files that never end with a newline (a ConfigMap written with YAML `|-`) reload; losing the newline the file in force had is refused', async () => {
    const s = await setup();
    await writeFile(s.path, s.yaml().trimEnd());
    const convention = watchConfigFile({ path: s.path, env: {}, inForce: () => s.h.broker.config(), apply: (next) => s.h.broker.reconfigure(next), logger: s.logs.logger, rescanIntervalMs: 0, watch: false });
    closers.push(() => convention.close());
    await writeFile(s.path, s.yaml({ rules: BILLING }).trimEnd());
    assert.equal((await convention.reload('signal')).result, 'success', 'no newline, as at start-up: reloaded');
    assert.equal(s.h.broker.config().rules[0]?.name, 'billing-only');
    // The first reloader learnt its file with a newline: the same text without one is refused as possibly cut off.
    const refused = await s.reloader.reload('signal');
    assert.equal(refused.result, 'invalid');
    assert.match(refused.result === 'invalid' ? (refused.problems[0]?.message ?? '') : '', /does not end with a newline as the configuration in force did/);
    assert.equal(s.h.broker.config().rules[0]?.name, 'billing-only', 'the refused file changed nothing');
  });

  it('half a file written in place, then the rest: the watch reloads the whole file, not the half', async () => {
    const s = await setup({ watch: true });
    const full = s.yaml({ rules: BILLING });
    await writeFile(s.path, full.slice(0, Math.floor(full.length / 2)));
    await writeFile(s.path, full);
    assert.ok(await eventually(() => s.h.broker.config().rules[0]?.name === 'billing-only', 10_000), 'the whole file is in force within 10 s');
    assert.ok(s.attempts.every((a) => a.result !== 'success' || a.rules.added.includes('billing-only')));
  });
});

describe('attack: a reload storm', () => {
  it('200 SIGHUPs at once make at most two reloads, and the last file written is in force', async () => {
    const s = await setup();
    await writeFile(s.path, s.yaml({ rules: BILLING }));
    const results = await Promise.all(Array.from({ length: 200 }, () => s.reloader.reload('signal')));
    assert.ok(s.attempts.length <= 2, `${s.attempts.length} reloads`);
    assert.ok(results.every((r) => r.result === 'success'));
    assert.equal(s.h.broker.config().rules[0]?.name, 'billing-only');
  });

  it('100 rewrites in a burst are debounced: far fewer reloads than writes, ending with the last content', async () => {
    const s = await setup({ watch: true });
    for (let i = 0; i < 100; i++) {
      const next = `${s.yaml({ rules: [{ name: `rule-${i}`, match: { namespaces: ['billing'] }, policies: ['billing-read'] }] })}`;
      const temp = `${s.path}.tmp`;
      await writeFile(temp, next);
      await rename(temp, s.path);
    }
    assert.ok(await eventually(() => s.h.broker.config().rules[0]?.name === 'rule-99', 10_000), 'the last write is in force within 10 s');
    assert.ok(s.attempts.length < 50, `${s.attempts.length} reloads for 100 writes`);
  });
});

describe('invariant: a token is served only if the configuration in force grants it (property)', () => {
  it('over any sequence of valid, invalid and restart-only reloads', async () => {
    const s = await setup();
    const subject = await s.h.issuer.projectedToken({ podUid: 'property-pod' });
    const candidates: { text: (y: Setup['yaml']) => string; grantsPayments: boolean | 'unchanged' }[] = [
      { text: (y) => y({ rules: PAYMENTS }), grantsPayments: true },
      { text: (y) => y({ rules: BILLING }), grantsPayments: false },
      { text: (y) => y({ rules: [...BILLING, ...PAYMENTS] }), grantsPayments: true },
      { text: (y) => y({ rules: [{ name: 'payments-ci', match: { namespaces: ['payments'], serviceAccounts: ['other-*'] }, policies: ['payments-read'] }] }), grantsPayments: false },
      { text: (y) => y({ rules: BILLING }).slice(0, -9), grantsPayments: 'unchanged' },
      { text: (y) => y({ rules: BILLING, server: { port: 9999, publicUrl: 'https://token-broker.test' } }), grantsPayments: 'unchanged' },
    ];
    let granted = true;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: candidates.length - 1 }), { minLength: 1, maxLength: 4 }), async (sequence) => {
        for (const index of sequence) {
          const candidate = candidates[index] as (typeof candidates)[number];
          await writeFile(s.path, candidate.text(s.yaml));
          await s.reloader.reload('signal');
          if (candidate.grantsPayments !== 'unchanged') granted = candidate.grantsPayments;
          const res = await s.h.exchange(subject);
          assert.equal(res.status, granted ? 200 : 400, `after candidate ${index}`);
          if (granted) assert.equal(res.body.scope, 'payments-read');
        }
      }),
      { numRuns: 12 },
    );
  });
});
