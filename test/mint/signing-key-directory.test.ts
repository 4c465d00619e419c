import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtemp, mkdir, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { openSigningKeyDirectory, type SigningKeyDirectory, type SigningKeyDirectoryOptions } from '../../src/server/mint/signing-key-directory.js';
import { keyMetadataDocument, keyMetadataFileName, loadSigningKeysDir, readSigningKeysDir, recordSigningKeyStates } from '../../src/server/mint/signing-key-set.js';
import { createMetrics } from '../../src/server/observability/metrics.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { captureLogs, type LogCapture } from '../support/log-capture.js';
import { useScratchDir } from '../support/scratch-dir.js';

const T0 = Date.UTC(2025, 0, 1);
const LIFECYCLE = { prePublishSeconds: 300, maxTokenTtlSeconds: 600, retireMarginSeconds: 60 };

function ecPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function kidOf(pem: string): Promise<string> {
  return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }) as JWK, 'sha256');
}

/** Writes a key and, when `notBefore` is given, its metadata file. Keys go in through a rename, as a Secret update would. */
async function writeKey(dir: string, name: string, pem: string, notBefore?: number): Promise<string> {
  if (notBefore !== undefined) await writeFile(join(dir, keyMetadataFileName(name)), JSON.stringify({ notBefore: new Date(notBefore).toISOString() }));
  await writeFile(join(dir, `.${name}.tmp`), pem);
  await rename(join(dir, `.${name}.tmp`), join(dir, name));
  return kidOf(pem);
}

/** Waits, boundedly, until `condition` holds; real fs events and timers are involved, so there is no fixed delay. */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if (condition()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting until ${what}`);
}

describe('openSigningKeyDirectory', () => {
  let root: string;
  let counter = 0;
  const open: SigningKeyDirectory[] = [];
  async function freshDir(): Promise<string> {
    counter += 1;
    const dir = join(root, `case-${counter}`);
    await mkdir(dir);
    return dir;
  }
  async function openDir(dir: string, clock: TestClock, logs: LogCapture, extra: Partial<SigningKeyDirectoryOptions> = {}): Promise<SigningKeyDirectory> {
    const directory = await openSigningKeyDirectory({
      dir,
      algorithm: 'ES256',
      lifecycle: LIFECYCLE,
      now: clock.now,
      logger: logs.logger,
      rescanIntervalMs: 0,
      watch: false,
      ...extra,
    });
    open.push(directory);
    return directory;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'signing-key-directory-'));
  });
  after(async () => {
    await Promise.all(open.map((d) => d.close()));
    await rm(root, { recursive: true, force: true });
  });

  it('dates keys by their metadata notBefore and moves them through their states with the clock alone', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    const oldKid = await writeKey(dir, 'old.pem', ecPem(), T0 - 86_400_000);
    const newKid = await writeKey(dir, 'new.pem', ecPem(), T0);
    const keys = await openDir(dir, clock, captureLogs());
    assert.equal(keys.active()?.kid, oldKid);
    assert.deepEqual(keys.published().map((k) => k.kid), [newKid, oldKid]);
    assert.equal(keys.states().states.get(newKid)?.state, 'pending');

    clock.advance(299);
    assert.equal(keys.active()?.kid, oldKid, 'one second before the window ends');
    clock.advance(1);
    assert.equal(keys.active()?.kid, newKid, 'the new key signs once published for prePublishSeconds');
    assert.equal(keys.states().states.get(oldKid)?.state, 'retiring');
    assert.deepEqual(keys.published().map((k) => k.kid), [newKid, oldKid]);

    clock.advance(600 + 60 - 1);
    assert.equal(keys.published().length, 2, 'one second before maxTtl + margin');
    clock.advance(1);
    assert.deepEqual(keys.published().map((k) => k.kid), [newKid], 'the old key leaves the JWKS');
    assert.equal(keys.states().states.get(oldKid)?.state, 'retired');
  });

  it('tells listeners about every change, from files or from time', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    const logs = captureLogs();
    const firstKid = await writeKey(dir, 'a.pem', ecPem(), T0 - 86_400_000);
    const keys = await openDir(dir, clock, logs);
    let changes = 0;
    const stop = keys.onChange(() => {
      changes += 1;
    });
    clock.advance(10);
    keys.active();
    assert.equal(changes, 0, 'nothing changed');

    const secondKid = await writeKey(dir, 'b.pem', ecPem(), clock.now());
    assert.equal(await keys.rescan(), true);
    assert.equal(changes, 1, 'the new key appeared, pending');
    assert.deepEqual(keys.published().map((k) => k.kid), [secondKid, firstKid]);
    assert.equal(await keys.rescan(), true);
    assert.equal(changes, 1, 'an unchanged directory is not a change');

    clock.advance(300);
    assert.equal(keys.active()?.kid, secondKid);
    assert.equal(changes, 2, 'the hand-over, with no file touched');
    const transitions = logs.lines.filter((l) => l.msg === 'signing key retiring' || l.msg === 'signing key active').map((l) => [l.kid, l.from, l.state]);
    assert.deepEqual(transitions, [
      [firstKid, null, 'active'],
      [secondKid, 'pending', 'active'],
      [firstKid, 'active', 'retiring'],
    ]);

    stop();
    clock.advance(3600);
    keys.active();
    assert.equal(changes, 2, 'unsubscribed');
  });

  it('keeps the last good set when the directory empties or a file is corrupt, and recovers', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    const logs = captureLogs();
    const pem = ecPem();
    const kid = await writeKey(dir, 'k.pem', pem, T0 - 86_400_000);
    const keys = await openDir(dir, clock, logs);
    assert.deepEqual(keys.status(), { dir, canSign: true, lastLoadedAt: T0 });

    await unlink(join(dir, 'k.pem'));
    clock.advance(10);
    assert.equal(await keys.rescan(), false);
    assert.equal(await keys.rescan(), false);
    assert.equal(keys.active()?.kid, kid, 'the last good key still signs');
    assert.deepEqual(keys.published().map((k) => k.kid), [kid]);
    const status = keys.status();
    assert.equal(status.canSign, true);
    assert.equal(status.lastLoadedAt, T0);
    assert.equal(status.lastError?.since, T0 + 10_000);
    assert.match(status.lastError?.message ?? '', /no PKCS#8 PEM private keys/);
    const errors = logs.lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1, 'logged once, not on every re-read');
    assert.equal(errors[0]?.msg, 'cannot read the signing keys directory: keeping the last good key set');

    // A corrupt key: still the last good set, a new error message is logged.
    await writeFile(join(dir, 'k.pem'), '-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n');
    assert.equal(await keys.rescan(), false);
    assert.equal(keys.active()?.kid, kid);
    assert.match(keys.status().lastError?.message ?? '', /k\.pem: not a PKCS#8 ES256 private key/);
    assert.equal(logs.lines.filter((l) => l.level === 50).length, 2);

    // A corrupt metadata file counts too: a wrong date would put the wrong key in charge.
    await writeKey(dir, 'k.pem', pem);
    await writeFile(join(dir, 'k.json'), '{"notBefore": "yesterday"}');
    assert.equal(await keys.rescan(), false);
    assert.match(keys.status().lastError?.message ?? '', /k\.json: notBefore: must be an RFC 3339 time with a zone/);

    await writeFile(join(dir, 'k.json'), keyMetadataDocument(kid, T0 - 86_400_000));
    clock.advance(5);
    assert.equal(await keys.rescan(), true);
    assert.deepEqual(keys.status(), { dir, canSign: true, lastLoadedAt: T0 + 15_000 });
    assert.ok(logs.lines.some((l) => l.msg === 'signing keys directory readable again'));
  });

  it('warns when a new key arrives already past its pending window (metadata dated long before the Secret was applied)', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    const logs = captureLogs();
    await writeKey(dir, 'a.pem', ecPem(), T0 - 86_400_000);
    const keys = await openDir(dir, clock, logs);
    const punctual = await writeKey(dir, 'b.pem', ecPem(), T0);
    assert.equal(await keys.rescan(), true);
    const late = await writeKey(dir, 'c.pem', ecPem(), T0 - 3_600_000 + 1);
    clock.advance(1);
    assert.equal(await keys.rescan(), true);
    assert.equal(keys.active()?.kid, late, 'it signs at once: its window counts from its notBefore');
    const warnings = logs.lines.filter((l) => l.level === 40);
    assert.deepEqual(
      warnings.map((w) => [w.kid, String(w.msg).split(':')[0]]),
      [[late, 'a new signing key appeared already past its pending window and signs at once']],
    );
    assert.notEqual(punctual, late);
  });

  it('refuses to open without a good first read', async () => {
    const dir = await freshDir();
    const logs = captureLogs();
    await assert.rejects(openDir(dir, createTestClock(T0), logs), /no PKCS#8 PEM private keys/);
    await writeKey(dir, 'k.pem', ecPem());
    await writeFile(join(dir, 'k.json'), JSON.stringify({ notBefore: '2025-01-01T00:00:00Z', kid: 'someone-elses-kid' }));
    await assert.rejects(openDir(dir, createTestClock(T0), logs), /k\.json: kid someone-elses-kid does not match the key's kid/);
  });

  it('follows a Kubernetes Secret update: the ..data link swapped to a new generation', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    const logs = captureLogs();
    const oldPem = ecPem();
    const newPem = ecPem();
    /** One kubelet generation: a timestamped directory with every file of the Secret. */
    async function generation(name: string, files: Record<string, string>): Promise<void> {
      await mkdir(join(dir, name));
      for (const [file, text] of Object.entries(files)) await writeFile(join(dir, name, file), text);
    }
    const oldKid = await kidOf(oldPem);
    const newKid = await kidOf(newPem);
    await generation('..2025_01_01_00_00_00.1', { 'a.pem': oldPem, 'a.json': keyMetadataDocument(oldKid, T0 - 86_400_000) });
    await symlink('..2025_01_01_00_00_00.1', join(dir, '..data'));
    for (const name of ['a.pem', 'a.json']) await symlink(join('..data', name), join(dir, name));
    const keys = await openDir(dir, clock, logs);
    assert.deepEqual(keys.published().map((k) => k.kid), [oldKid]);
    assert.equal(keys.files()[0]?.key.source, join(dir, 'a.pem'));

    // The kubelet writes the new generation, points a temporary link at it and renames it over ..data.
    await generation('..2025_01_01_00_10_00.2', {
      'a.pem': oldPem,
      'a.json': keyMetadataDocument(oldKid, T0 - 86_400_000),
      'b.pem': newPem,
      'b.json': keyMetadataDocument(newKid, T0),
    });
    await symlink('..2025_01_01_00_10_00.2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    for (const name of ['b.pem', 'b.json']) await symlink(join('..data', name), join(dir, name));
    await rm(join(dir, '..2025_01_01_00_00_00.1'), { recursive: true });
    assert.equal(await keys.rescan(), true);
    assert.deepEqual(keys.published().map((k) => k.kid), [newKid, oldKid]);
    assert.equal(keys.active()?.kid, oldKid, 'the new key waits for its window');
    assert.equal(keys.states().states.get(newKid)?.since, T0, 'dated by its metadata, not by the kubelet');
    assert.equal(logs.lines.filter((l) => l.level === 40).length, 0, 'every key has metadata: no warning');
  });

  it('warns when a key in a Kubernetes mount has no metadata file', async () => {
    const dir = await freshDir();
    await mkdir(join(dir, '..2025_01_01_00_00_00.1'));
    await writeFile(join(dir, '..2025_01_01_00_00_00.1', 'tls.key'), ecPem());
    await symlink('..2025_01_01_00_00_00.1', join(dir, '..data'));
    await symlink(join('..data', 'tls.key'), join(dir, 'tls.key'));
    const logs = captureLogs();
    await openDir(dir, createTestClock(T0), logs);
    const warnings = logs.lines.filter((l) => l.level === 40);
    // The lone key is dated by its mtime (now), so it also signs before its window: both are worth a warning.
    assert.deepEqual(
      warnings.map((w) => [String(w.msg).split(':')[0], w.metadata ?? null]),
      [
        ['no signing key has been published for signing.prePublishSeconds yet', null],
        ['signing key has no metadata file in a Kubernetes mount', join(dir, 'tls.json')],
      ],
    );
  });

  it('re-reads on a watch event without a restart', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    await writeKey(dir, 'a.pem', ecPem(), T0 - 86_400_000);
    const keys = await openDir(dir, clock, captureLogs(), { watch: true });
    const kid = await writeKey(dir, 'b.pem', ecPem(), T0);
    await eventually(() => keys.published().some((k) => k.kid === kid), 'the watched directory shows the new key');
  });

  it('re-reads periodically when no watch event comes', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    await writeKey(dir, 'a.pem', ecPem(), T0 - 86_400_000);
    const keys = await openDir(dir, clock, captureLogs(), { rescanIntervalMs: 20 });
    const kid = await writeKey(dir, 'b.pem', ecPem(), T0);
    await eventually(() => keys.published().some((k) => k.kid === kid), 'the periodic re-read finds the new key');
  });

  it('coalesces concurrent re-reads and stops on close', async () => {
    const dir = await freshDir();
    const clock = createTestClock(T0);
    const kid = await writeKey(dir, 'a.pem', ecPem(), T0 - 86_400_000);
    const keys = await openDir(dir, clock, captureLogs());
    assert.deepEqual(await Promise.all([keys.rescan(), keys.rescan(), keys.rescan()]), [true, true, true]);
    await keys.close();
    await writeKey(dir, 'b.pem', ecPem(), T0);
    assert.equal(await keys.rescan(), false, 'closed: no more reads');
    assert.deepEqual(keys.published().map((k) => k.kid), [kid]);
  });
});

describe('readSigningKeysDir metadata', () => {
  const scratch = useScratchDir('signing-key-metadata-');

  it('names the metadata file after the key file, extension replaced', () => {
    assert.deepEqual(['key-2025.pem', 'tls.key', 'signing', 'a.b.pem'].map(keyMetadataFileName), ['key-2025.json', 'tls.json', 'signing.json', 'a.b.json']);
  });

  it('takes notBefore when present (any zone), the mtime otherwise', async () => {
    const withMeta = ecPem();
    const without = ecPem();
    await writeFile(scratch.file('meta.pem'), withMeta);
    await writeFile(scratch.file('meta.json'), JSON.stringify({ notBefore: '2025-01-01T02:00:00+02:00', kid: await kidOf(withMeta) }));
    await writeFile(scratch.file('plain.pem'), without);
    await utimes(scratch.file('plain.pem'), T0 / 1000 + 7, T0 / 1000 + 7);
    const { files, kubernetesMount } = await readSigningKeysDir(scratch.path, 'ES256');
    assert.equal(kubernetesMount, false);
    assert.deepEqual(
      files.map((f) => [f.key.kid, f.key.createdAt, f.createdFrom]),
      [
        [await kidOf(withMeta), T0, 'metadata'],
        [await kidOf(without), T0 + 7000, 'mtime'],
      ],
    );
    // The fixed set honours the metadata date too: the plain key, 7 s newer, signs.
    assert.equal((await loadSigningKeysDir(scratch.path, 'ES256')).active()?.kid, await kidOf(without));
  });

  it('refuses a metadata file that is not JSON, has unknown keys or a date without a zone', async () => {
    for (const [text, message] of [
      ['not json', /bad\.json: not JSON/],
      ['{"notBefore": "2025-01-01T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z"}', /bad\.json: unknown key\(s\) notAfter/],
      ['{"notBefore": "2025-01-01T00:00:00"}', /bad\.json: notBefore: must be an RFC 3339 time with a zone/],
      ['{}', /bad\.json: notBefore: /],
    ] as const) {
      const caseDir = await mkdtemp(scratch.file('bad-'));
      await writeFile(join(caseDir, 'bad.pem'), ecPem());
      await writeFile(join(caseDir, 'bad.json'), text);
      await assert.rejects(readSigningKeysDir(caseDir, 'ES256'), message);
    }
  });

  it('refuses two keys that would share one metadata file', async () => {
    const caseDir = await mkdtemp(scratch.file('clash-'));
    await writeFile(join(caseDir, 'k.pem'), ecPem());
    await writeFile(join(caseDir, 'k.key'), ecPem());
    await assert.rejects(readSigningKeysDir(caseDir, 'ES256'), /k\.pem: k\.key and k\.pem would share the metadata file k\.json; rename one$/);
  });
});

describe('recordSigningKeyStates', () => {
  it('publishes one series per published key with its state and since, and drops retired keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'signing-key-metrics-'));
    try {
      const clock = createTestClock(T0);
      const oldKid = await writeKey(dir, 'old.pem', ecPem(), T0 - 86_400_000);
      const newKid = await writeKey(dir, 'new.pem', ecPem(), T0);
      const keys = await openSigningKeyDirectory({ dir, algorithm: 'ES256', lifecycle: LIFECYCLE, now: clock.now, logger: captureLogs().logger, rescanIntervalMs: 0, watch: false });
      const metrics = createMetrics();
      recordSigningKeyStates(metrics, keys);
      keys.onChange(() => recordSigningKeyStates(metrics, keys));
      const series = async () => {
        const info = (await metrics.signingKeyInfo.get()).values.map((v) => [v.labels.kid, v.labels.state, v.value]);
        const since = Object.fromEntries((await metrics.signingKeyStateChange.get()).values.map((v) => [v.labels.kid, v.value]));
        return { info: info.sort(), since };
      };
      assert.deepEqual(await series(), {
        info: [[newKid, 'pending', 1], [oldKid, 'active', 1]].sort(),
        since: { [newKid]: T0 / 1000, [oldKid]: (T0 - 86_400_000) / 1000 + 300 },
      });
      clock.advance(300);
      keys.active();
      assert.deepEqual(await series(), {
        info: [[newKid, 'active', 1], [oldKid, 'retiring', 1]].sort(),
        since: { [newKid]: T0 / 1000 + 300, [oldKid]: T0 / 1000 + 300 },
      });
      clock.advance(660);
      keys.active();
      assert.deepEqual(await series(), { info: [[newKid, 'active', 1]], since: { [newKid]: T0 / 1000 + 300 } });
      await keys.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
