import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { openSigningKeyDirectory, type SigningKeyDirectory } from '../../src/server/mint/signing-key-directory.js';
import { keyLifecycleSettings } from '../../src/server/mint/key-lifecycle.js';
import { keyMetadataDocument } from '../../src/server/mint/signing-key-set.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import type { SigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { defaultConfig, startHarness, type Harness } from '../support/broker-harness.js';
import type { TestClock } from '../support/clock.js';
import type { LogCapture } from '../support/log-capture.js';
import { metricValue } from '../support/multi-broker.js';
import { runLoad, tally } from './load.js';

/*
 * The signing keys directory emptied, then corrupted, then restored, while exchanges run: every exchange keeps
 * getting a token signed with the last good key, /readyz stays ready (a key can sign) and says the keys cannot be
 * re-read, and token_broker_signing_keys_read_ok shows the failure. Readiness turns false only when nothing can
 * sign, and then no token is issued. The reads of the directory itself are unit-tested in
 * test/mint/signing-key-directory.test.ts ("keeps the last good set when the directory empties or a file is corrupt").
 */

/** A harness (test/support/broker-harness.ts) whose broker signs with the keys `signingKeys` builds, warmed up. */
async function startRig(signingKeys: (clock: TestClock, logs: LogCapture) => Promise<SigningKeySet>): Promise<Harness> {
  const rig = await startHarness({ signingKeys });
  await rig.broker.warmUp();
  return rig;
}

const audits = (rig: Harness) => rig.logs.lines.filter((line) => line.audit === true).length;
const issuedCount = (rig: Harness) => rig.logs.lines.filter((line) => line.outcome === 'issued').length;

describe('fault: the signing keys directory emptied and corrupted at run time', { timeout: 120_000 }, () => {
  let dir: string;
  let directory: SigningKeyDirectory;
  let rig: Harness;
  let kid: string;
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let metadata: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tb-faults-keys-'));
    kid = await calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }) as JWK);
    rig = await startRig(async (clock, logs) => {
      // Created a day ago: long past its pending window, so it is the active key.
      metadata = keyMetadataDocument(kid, clock.now() - 86_400_000);
      await writeFile(join(dir, 'key-1.pem'), pem);
      await writeFile(join(dir, 'key-1.json'), metadata);
      const config = validateConfig(defaultConfig('http://127.0.0.1:1'));
      if (!config.ok) throw new Error('config');
      directory = await openSigningKeyDirectory({
        dir,
        algorithm: 'ES256',
        lifecycle: keyLifecycleSettings(config.config.signing, config.config.tokens),
        now: clock.now,
        logger: logs.logger,
        rescanIntervalMs: 0,
        watch: false,
      });
      return directory;
    });
  });
  after(async () => {
    await rig.close();
    await directory.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function observe(): Promise<{ ready: number; detail: string; readOk: number | undefined }> {
    const ready = await rig.http.get('/readyz');
    const metrics = await rig.http.get('/metrics');
    return {
      ready: ready.status,
      detail: String((ready.body as { checks: { signingKey: { detail: string } } }).checks.signingKey.detail),
      readOk: metricValue(metrics.text, 'token_broker_signing_keys_read_ok'),
    };
  }

  it('every exchange is signed with the last good key; readiness stays true and the metric shows the failed reads', async (t) => {
    const observations: Record<string, Awaited<ReturnType<typeof observe>>> = {};
    const rescans: Record<string, boolean> = {};
    const auditsBefore = audits(rig);
    const { report, results } = await runLoad({
      count: 300,
      concurrency: 4,
      pauseMs: 2,
      deadlineMs: 60_000,
      async before(i) {
        if (i === 50) observations.healthy = await observe();
        if (i === 100) {
          await rm(join(dir, 'key-1.pem'));
          await rm(join(dir, 'key-1.json'));
          rescans.emptied = await directory.rescan();
        }
        if (i === 120) observations.emptied = await observe();
        if (i === 150) {
          await writeFile(join(dir, 'key-1.pem'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
          rescans.corrupted = await directory.rescan();
        }
        if (i === 170) observations.corrupted = await observe();
        if (i === 200) {
          await writeFile(join(dir, 'key-1.pem'), pem);
          await writeFile(join(dir, 'key-1.json'), metadata);
          rescans.restored = await directory.rescan();
        }
        if (i === 250) observations.restored = await observe();
      },
      // A fresh pod per request: every exchange mints, so every one of them signs.
      async send(i) {
        const res = await rig.exchange(await rig.issuer.projectedToken({ podUid: `keys-fault-${i}` }));
        return { status: res.status, body: res.body as unknown };
      },
    });
    t.diagnostic(`load: ${JSON.stringify(report)}`);
    t.diagnostic(`observations: ${JSON.stringify(observations)}`);

    assert.deepEqual(rescans, { emptied: false, corrupted: false, restored: true });
    assert.deepEqual(tally(results), { '200': 300 });
    const kids = new Set(results.map((r) => decodeProtectedHeader(String(r.accessToken)).kid));
    assert.deepEqual([...kids], [kid], 'every token is signed with the one good key');
    assert.equal(audits(rig) - auditsBefore, 300);
    assert.equal(issuedCount(rig), 300, 'audit records = tokens issued');

    assert.deepEqual(observations.healthy, { ready: 200, detail: `kid ${kid}`, readOk: 1 });
    for (const phase of ['emptied', 'corrupted'] as const) {
      const seen = observations[phase];
      assert.equal(seen?.ready, 200, `${phase}: still ready, the last good key signs`);
      assert.match(String(seen?.detail), new RegExp(`^kid ${kid}; the keys cannot be re-read since \\S+, the last good key set is in force$`));
      assert.equal(seen?.readOk, 0, `${phase}: token_broker_signing_keys_read_ok is 0`);
    }
    assert.deepEqual(observations.restored, { ready: 200, detail: `kid ${kid}`, readOk: 1 });
    assert.equal(rig.logs.lines.filter((line) => line.msg === 'cannot read the signing keys directory: keeping the last good key set').length, 2, 'each distinct failure logged once');
  });
});

describe('fault: nothing can sign at run time', { timeout: 120_000 }, () => {
  let rig: Harness;
  let canSign = true;

  before(async () => {
    rig = await startRig(async (clock) => {
      const key = await generateSigningKey('ES256', clock.now());
      // A key set whose only key stops signing, as when every key has been removed from a fixed set.
      return { active: () => (canSign ? key : undefined), published: () => [key] };
    });
  });
  after(() => rig.close());

  it('readiness turns false, exchanges are refused with 503 no_signing_key and no token, and both recover', async (t) => {
    const auditsBefore = audits(rig);
    const readiness: Record<string, { status: number; signingKey: unknown }> = {};
    const readyz = async () => {
      const res = await rig.http.get('/readyz');
      return { status: res.status, signingKey: (res.body as { checks: { signingKey: unknown } }).checks.signingKey };
    };
    const { report, results } = await runLoad({
      count: 150,
      concurrency: 4,
      pauseMs: 2,
      deadlineMs: 60_000,
      async before(i) {
        if (i === 50) canSign = false;
        if (i === 75) readiness.none = await readyz();
        if (i === 100) canSign = true;
        if (i === 125) readiness.again = await readyz();
      },
      async send(i) {
        const res = await rig.exchange(await rig.issuer.projectedToken({ podUid: `no-key-${i}` }));
        return { status: res.status, body: res.body as unknown };
      },
    });
    t.diagnostic(`load: ${JSON.stringify(report)}`);
    assert.deepEqual(readiness.none, { status: 503, signingKey: { ok: false, detail: 'no signing key' } });
    assert.equal(readiness.again?.status, 200);
    const inner = (from: number, to: number) => tally(results.filter((r) => r.i >= from + 4 && r.i < to - 4));
    assert.deepEqual(inner(0, 50), { '200': 42 });
    assert.deepEqual(inner(50, 100), { '503 no_signing_key': 42 });
    assert.deepEqual(inner(100, 150), { '200': 42 });
    assert.equal(report.failed, 0);
    assert.equal(audits(rig) - auditsBefore, report.succeeded, 'audit records = tokens issued');
    assert.equal(issuedCount(rig), report.succeeded);
  });
});
