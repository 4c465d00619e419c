import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { parse } from 'yaml';
import { keyMetadataDocument, loadSigningKeysDir, readSigningKeysDir } from '../../src/server/mint/signing-key-set.js';
import { formatKeyTable, keys } from '../../src/tools/cli/keys.js';
import type { KeyStateInfo } from '../../src/server/mint/key-lifecycle.js';
import { runCli } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';

/** `token-broker keys ...args` as a child process, as the package would run it. */
const runKeys = (args: readonly string[]) => runCli(['keys', ...args]);

function ecPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function kidOf(pem: string): Promise<string> {
  return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }) as JWK, 'sha256');
}

describe('token-broker keys', () => {
  const scratch = useScratchDir('keys-cli-');
  /** A minimal configuration with `signing` (a YAML flow mapping) as its signing block. */
  const writeConfig = (name: string, signing: string) =>
    scratch.write(name, [
      'server: { publicUrl: "https://broker.example" }',
      'issuers: [{ name: cluster, issuer: "https://issuer.example", audiences: [broker] }]',
      'rules: [{ name: everyone, policies: [read] }]',
      `signing: ${signing}`,
      '',
    ]);

  it('generate --out writes a 0600 PKCS#8 key and its metadata, prints the kid, and the loader accepts it', async () => {
    const dir = scratch.file('generated');
    const result = await runKeys(['generate', '--alg', 'ES256', '--out', dir]);
    assert.equal(result.code, 0, result.stderr);
    const kid = result.stdout.trim();
    assert.match(kid, /^[A-Za-z0-9_-]{43}$/, 'one line: the RFC 7638 thumbprint');

    const names = (await readdir(dir)).sort();
    assert.equal(names.length, 2, names.join());
    const [metadataName, pemName] = names;
    assert.match(pemName ?? '', new RegExp(`^key-\\d{8}T\\d{6}Z-${kid.slice(0, 8).replace(/[-_]/g, '\\$&')}\\.pem$`));
    assert.equal(metadataName, (pemName ?? '').replace(/\.pem$/, '.json'));
    const pemPath = join(dir, pemName ?? '');
    assert.equal((await stat(pemPath)).mode & 0o777, 0o600);
    const pem = await readFile(pemPath, 'utf8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(await kidOf(pem), kid);
    const metadata = JSON.parse(await readFile(join(dir, metadataName ?? ''), 'utf8')) as { notBefore: string; kid: string };
    assert.deepEqual(Object.keys(metadata).sort(), ['kid', 'notBefore']);
    assert.equal(metadata.kid, kid);

    const keys = await loadSigningKeysDir(dir, 'ES256');
    assert.deepEqual(keys.published().map((k) => k.kid), [kid]);
    const { files } = await readSigningKeysDir(dir, 'ES256');
    assert.equal(files[0]?.createdFrom, 'metadata');
    assert.equal(files[0]?.key.createdAt, Date.parse(metadata.notBefore));
  });

  it('generate --alg RS256 writes an RSA key the loader accepts for RS256', async () => {
    const dir = scratch.file('rsa');
    const result = await runKeys(['generate', '--alg', 'RS256', '--out', dir]);
    assert.equal(result.code, 0, result.stderr);
    const keys = await loadSigningKeysDir(dir, 'RS256');
    assert.equal(keys.active()?.kid, result.stdout.trim());
    assert.equal(keys.active()?.publicJwk.kty, 'RSA');
  });

  it('generate --k8s-secret prints a Secret manifest holding the key and its metadata', async () => {
    const result = await runKeys(['generate', '--alg', 'ES384', '--k8s-secret', 'token-broker-signing-keys', '--namespace', 'platform']);
    assert.equal(result.code, 0, result.stderr);
    const manifest = parse(result.stdout) as {
      apiVersion: string;
      kind: string;
      type: string;
      metadata: { name: string; namespace: string; labels: Record<string, string> };
      data: Record<string, string>;
    };
    assert.equal(manifest.apiVersion, 'v1');
    assert.equal(manifest.kind, 'Secret');
    assert.equal(manifest.type, 'Opaque');
    assert.equal(manifest.metadata.name, 'token-broker-signing-keys');
    assert.equal(manifest.metadata.namespace, 'platform');
    const entries = Object.keys(manifest.data).sort();
    assert.equal(entries.length, 2);
    for (const name of entries) assert.match(name, /^[-._a-zA-Z0-9]+$/, 'a valid Secret data key');
    assert.match(result.stdout, /kubectl patch secret token-broker-signing-keys -n platform --type merge/);

    // Mounted, the Secret's data becomes files: the broker reads them as a dated key.
    const dir = scratch.file('from-secret');
    await mkdir(dir);
    for (const [name, value] of Object.entries(manifest.data)) await writeFile(join(dir, name), Buffer.from(value, 'base64'));
    const { files } = await readSigningKeysDir(dir, 'ES384');
    assert.equal(files.length, 1);
    assert.equal(files[0]?.createdFrom, 'metadata');
    assert.match(result.stderr, new RegExp(`kid ${(files[0]?.key.kid ?? '').replace(/[-_]/g, '\\$&')}`));
  });

  it('list prints every key with its state and next transition', async () => {
    const dir = scratch.file('list-keys');
    await mkdir(dir);
    const now = Date.now();
    const minutes = 60_000;
    const ages = { ancient: 10 * 24 * 60, old: 2 * 24 * 60, mid: 30, fresh: 1 };
    const kids: Record<string, string> = {};
    for (const [name, ageMinutes] of Object.entries(ages)) {
      const pem = ecPem();
      kids[name] = await kidOf(pem);
      await writeFile(join(dir, `${name}.pem`), pem);
      await writeFile(join(dir, `${name}.json`), keyMetadataDocument(kids[name] ?? '', now - ageMinutes * minutes));
    }
    // A key without metadata is dated by its mtime, and marked so.
    const undated = ecPem();
    await writeFile(join(dir, 'undated.pem'), undated);
    const config = await writeConfig('list.yaml', `{ keysDir: ${JSON.stringify(dir)} }`);
    const result = await runKeys(['list', '--config', config]);
    assert.equal(result.code, 0, result.stderr);
    const [header, ...rows] = result.stdout.trimEnd().split('\n');
    assert.deepEqual(header?.split(/\s{2,}/), ['KID', 'ALG', 'STATE', 'CREATED', 'FILE', 'NEXT']);
    const byKid = new Map(rows.map((row) => [row.split(/\s+/)[0], row]));
    const stateOf = (kid: string | undefined) => byKid.get(kid)?.split(/\s+/)[2];
    // Newest first: undated (mtime now) and fresh wait; mid signs; old retires; ancient has left the JWKS.
    assert.equal(rows.length, 5);
    assert.equal(stateOf(kids.fresh), 'pending');
    assert.equal(stateOf(await kidOf(undated)), 'pending');
    assert.equal(stateOf(kids.mid), 'active');
    assert.equal(stateOf(kids.old), 'retiring');
    assert.equal(stateOf(kids.ancient), 'retired');
    assert.match(byKid.get(kids.fresh) ?? '', /pending\s+\S+Z\s+\S+\.pem\s+published now; starts signing at \S+Z \(in \d+m\d+s\)$/);
    assert.match(byKid.get(kids.old) ?? '', /retiring\s+\S+Z\s+\S+\.pem\s+no longer signs; leaves the JWKS at \S+Z \(in \d+m\d+s\)/);
    assert.match(byKid.get(kids.mid) ?? '', /active\s+\S+Z\s+\S+\.pem\s+signs until \S+Z \(in \d+m\d+s\), when a newer key takes over; then retiring/, 'mid hands over when the newer keys are ready');
    assert.match(byKid.get(kids.ancient) ?? '', /retired\s+\S+Z\s+\S+\.pem\s+not published, no longer used: the file can be deleted$/);
    assert.match(byKid.get(await kidOf(undated)) ?? '', /\(mtime\)/);
  });

  it('list exits 1 with a clear message on a bad configuration or a bad key', async () => {
    const badConfig = await scratch.write('bad.yaml', 'server: { publicUrl: "https://broker.example" }\n');
    const invalid = await runKeys(['list', '--config', badConfig]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /bad\.yaml: invalid configuration\n/);
    assert.match(invalid.stderr, /^ {2}issuers: /m);

    const dir = scratch.file('corrupt-keys');
    await mkdir(dir);
    await writeFile(join(dir, 'k.pem'), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const config = await writeConfig('corrupt.yaml', `{ keysDir: ${JSON.stringify(dir)} }`);
    const corrupt = await runKeys(['list', '--config', config]);
    assert.equal(corrupt.code, 1);
    assert.equal(corrupt.stdout, '');
    assert.match(corrupt.stderr, new RegExp(`^token-broker keys list: ${join(dir, 'k.pem').replace(/[.]/g, '\\.')}: not a PKCS#8 ES256 private key`));
  });

  it('usage errors exit 2 with the usage on stderr', async () => {
    // Two through the real command line (main's wiring and exit status); the whole table in-process below.
    for (const args of [['rotate'], ['generate', '--alg', 'ES256', '--force']]) {
      const result = await runKeys(args);
      assert.equal(result.code, 2, `keys ${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /Usage: token-broker keys <command>/);
    }
  });

  it('refuses every malformed invocation with exit 2, naming the problem, writing nothing', async (t) => {
    const out = scratch.file('never-written');
    const cases: [string[], RegExp][] = [
      [[], /a command is required/],
      [['rotate'], /unknown command "rotate"/],
      [['generate', '--alg', 'EdDSA', '--out', out], /--alg must be one of ES256, ES384, RS256, PS256, got "EdDSA"/],
      [['generate', '--dir', out], /^token-broker keys: keys generate has no option --dir \(did you mean --out DIR\?\); its options are --alg, --config, --out, --k8s-secret, --namespace\n/],
      [['generate', '--out'], /^token-broker keys: --out needs a value\n/],
      [['generate', '--alg', 'RS256', '--config', 'config/broker.example.yaml', '--out', out], /--alg RS256 differs from signing\.algorithm ES256 in config\/broker\.example\.yaml: that broker would refuse the key/],
      [['generate', '--alg', 'ES256'], /give exactly one of --out DIR or --k8s-secret NAME/],
      [['generate', '--alg', 'ES256', '--out', out, '--k8s-secret', 'keys'], /give exactly one of/],
      [['generate', '--alg', 'ES256', '--out', out, '--namespace', 'ns'], /--namespace goes with --k8s-secret/],
      [['generate', '--alg', 'ES256', '--k8s-secret', 'Bad_Name'], /not a valid Kubernetes name/],
      [['generate', '--alg', 'ES256', '--k8s-secret', 'keys', '--namespace', 'Bad.NS'], /not a valid namespace/],
      [['generate', '--alg', 'ES256', '--out', out, '--force'], /keys generate has no option --force; its options are/],
      [['generate', '--alg', 'ES256', '--out', out, 'extra'], /unexpected argument "extra"/],
      [['list'], /--config FILE is required/],
      [['list', '--config', 'a.yaml', 'extra'], /unexpected argument "extra"/],
      [['list', '--config'], /--config needs a value/],
      [['list', '--dir', 'x'], /keys list has no option --dir; its options are --config/],
    ];
    for (const [args, message] of cases) {
      const stdout = t.mock.method(console, 'log', () => undefined);
      const stderr = t.mock.method(console, 'error', () => undefined);
      const code = await keys(args, {});
      const errors = stderr.mock.calls.map((call) => String(call.arguments[0])).join('\n');
      assert.equal(code, 2, `keys ${args.join(' ')}: ${errors}`);
      assert.equal(stdout.mock.callCount(), 0, `keys ${args.join(' ')}`);
      assert.match(errors, message, `keys ${args.join(' ')}`);
      assert.match(errors, /Usage: token-broker keys <command>/);
      stdout.mock.restore();
      stderr.mock.restore();
    }
    await assert.rejects(stat(out), { code: 'ENOENT' }, 'no usage error writes anything');
  });

  it('generate without --alg: ES256 (the configuration default), or signing.algorithm of --config', async () => {
    const plain = scratch.file('default-alg');
    const configured = scratch.file('configured-alg');
    const config = await writeConfig('rs256.yaml', `{ algorithm: RS256, keysDir: ${JSON.stringify(configured)} }`);
    const [byDefault, byConfig] = await Promise.all([runKeys(['generate', '--out', plain]), runKeys(['generate', '--config', config, '--out', configured])]);
    assert.equal(byDefault.code, 0, byDefault.stderr);
    assert.equal(byConfig.code, 0, byConfig.stderr);
    // The broker's own loader, with the algorithm it would be configured with, accepts each key.
    assert.deepEqual((await readSigningKeysDir(plain, 'ES256')).files.map((f) => f.key.kid), [byDefault.stdout.trim()]);
    assert.deepEqual((await readSigningKeysDir(configured, 'RS256')).files.map((f) => [f.key.kid, f.key.alg]), [[byConfig.stdout.trim(), 'RS256']]);
  });

  it('list says what happens next to each key, in words (a fresh only key signs early, it does not "become active")', () => {
    const now = Date.parse('2026-01-31T09:00:00Z');
    const row = (info: KeyStateInfo) => formatKeyTable([{ kid: 'k1', alg: 'ES256', createdAt: now - 14_000, createdFrom: 'metadata', info, file: '/keys/k1.pem' }], now).split('\n')[1] ?? '';
    const at = now + 286_000;
    assert.match(row({ state: 'active', since: now - 14_000, nextTransitionAt: at, nextState: 'active' }), /signs early \(published less than signing\.prePublishSeconds\); published long enough at 2026-01-31T09:04:46Z \(in 4m46s\), then signs until a newer key takes over$/);
    assert.doesNotMatch(row({ state: 'active', since: now - 14_000, nextTransitionAt: at, nextState: 'active' }), /active in/);
    assert.match(row({ state: 'pending', since: now, nextTransitionAt: at, nextState: 'active' }), /published now; starts signing at 2026-01-31T09:04:46Z \(in 4m46s\)$/);
    assert.match(row({ state: 'active', since: now }), /signs until a newer key becomes active \(keys generate\)$/);
    assert.match(row({ state: 'active', since: now, nextTransitionAt: at, nextState: 'retiring' }), /signs until 2026-01-31T09:04:46Z \(in 4m46s\), when a newer key takes over; then retiring \(still published\)$/);
    assert.match(row({ state: 'retiring', since: now, nextTransitionAt: at, nextState: 'retired' }), /no longer signs; leaves the JWKS at 2026-01-31T09:04:46Z \(in 4m46s\), then the file can be deleted$/);
    assert.match(row({ state: 'retired', since: now }), /not published, no longer used: the file can be deleted$/);
  });

  it('help prints the usage on stdout and exits 0', async (t) => {
    const stdout = t.mock.method(console, 'log', () => undefined);
    assert.equal(await keys(['help'], {}), 0);
    assert.match(String(stdout.mock.calls[0]?.arguments[0]), /^Usage: token-broker keys <command>/);
  });
});
