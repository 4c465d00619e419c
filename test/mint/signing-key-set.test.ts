import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtemp, mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { jwksDocument, loadSigningKeysDir } from '../../src/server/mint/signing-key-set.js';
import { signAccessToken } from '../../src/server/mint/sign-access-token.js';
import { useScratchDir } from '../support/scratch-dir.js';

function ecPem(namedCurve: 'P-256' | 'P-384' = 'P-256'): string {
  return generateKeyPairSync('ec', { namedCurve }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function rsaPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The RFC 7638 thumbprint of a PEM private key's public half, computed independently of the broker. */
async function thumbprintOf(pem: string): Promise<string> {
  return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }) as JWK, 'sha256');
}

const seconds = (iso: string) => new Date(iso).getTime() / 1000;

describe('loadSigningKeysDir', () => {
  let root: string;
  let counter = 0;
  /** A fresh directory per test, all under one temp root removed in `after`. */
  async function freshDir(): Promise<string> {
    counter += 1;
    const dir = join(root, `case-${counter}`);
    await mkdir(dir);
    return dir;
  }
  async function writeKey(dir: string, name: string, pem: string, mtimeIso?: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, pem);
    if (mtimeIso !== undefined) await utimes(path, seconds(mtimeIso), seconds(mtimeIso));
    return path;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'signing-keys-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('loads a P-256 key whose kid is its RFC 7638 thumbprint', async () => {
    const dir = await freshDir();
    const pem = ecPem();
    const path = await writeKey(dir, 'key.pem', pem);
    const keys = await loadSigningKeysDir(dir, 'ES256');
    const active = keys.active();
    assert.ok(active !== undefined);
    assert.equal(active.kid, await thumbprintOf(pem));
    assert.equal(active.alg, 'ES256');
    assert.equal(active.source, path);
    assert.equal(keys.published().length, 1);
  });

  it('signs with the key of the newest modification time and publishes all', async () => {
    const dir = await freshDir();
    const oldest = ecPem();
    const newest = ecPem();
    const middle = ecPem();
    // Names sort opposite to age, so the choice cannot come from directory order.
    await writeKey(dir, 'a.pem', oldest, '2024-01-01T00:00:00Z');
    await writeKey(dir, 'b.pem', middle, '2024-06-01T00:00:00Z');
    await writeKey(dir, 'c.pem', newest, '2025-01-01T00:00:00Z');
    const keys = await loadSigningKeysDir(dir, 'ES256');
    assert.equal(keys.active()?.kid, await thumbprintOf(newest));
    assert.deepEqual(
      keys.published().map((k) => k.kid),
      [await thumbprintOf(newest), await thumbprintOf(middle), await thumbprintOf(oldest)],
    );

    // Touching the oldest makes it the newest.
    await utimes(join(dir, 'a.pem'), seconds('2026-01-01T00:00:00Z'), seconds('2026-01-01T00:00:00Z'));
    assert.equal((await loadSigningKeysDir(dir, 'ES256')).active()?.kid, await thumbprintOf(oldest));
  });

  it('breaks a modification-time tie by kid, so every replica picks the same key', async () => {
    const dir = await freshDir();
    const pems = [ecPem(), ecPem()];
    await writeKey(dir, 'one.pem', pems[0] ?? '', '2025-01-01T00:00:00Z');
    await writeKey(dir, 'two.pem', pems[1] ?? '', '2025-01-01T00:00:00Z');
    const kids = await Promise.all(pems.map(thumbprintOf));
    const expected = [...kids].sort((a, b) => a.localeCompare(b))[0];
    assert.equal((await loadSigningKeysDir(dir, 'ES256')).active()?.kid, expected);
  });

  it('skips dot-entries, subdirectories and files that are not PKCS#8 private keys', async () => {
    const dir = await freshDir();
    const pem = ecPem();
    await writeKey(dir, 'signing.pem', pem, '2024-01-01T00:00:00Z');
    // A newer key hidden behind a dot name must not be picked up.
    await writeKey(dir, '.hidden.pem', ecPem(), '2026-01-01T00:00:00Z');
    await writeFile(join(dir, 'README.txt'), 'rotate keys with token-broker keys rotate\n');
    await writeFile(join(dir, 'public.pem'), createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString());
    await writeFile(join(dir, 'empty'), '');
    await mkdir(join(dir, 'nested'));
    await writeKey(join(dir, 'nested'), 'deeper.pem', ecPem(), '2026-01-01T00:00:00Z');
    const keys = await loadSigningKeysDir(dir, 'ES256');
    assert.deepEqual(
      keys.published().map((k) => k.kid),
      [await thumbprintOf(pem)],
    );
  });

  it('reads a Kubernetes Secret mount: visible names are symlinks through ..data', async () => {
    const dir = await freshDir();
    const pem = ecPem();
    const timestamped = join(dir, '..2025_01_01_00_00_00.123456789');
    await mkdir(timestamped);
    await writeKey(timestamped, 'tls.key', pem);
    await symlink('..2025_01_01_00_00_00.123456789', join(dir, '..data'));
    await symlink(join('..data', 'tls.key'), join(dir, 'tls.key'));
    const keys = await loadSigningKeysDir(dir, 'ES256');
    assert.equal(keys.published().length, 1, 'the key is loaded once, through its visible name');
    assert.equal(keys.active()?.kid, await thumbprintOf(pem));
    assert.equal(keys.active()?.source, join(dir, 'tls.key'));
  });

  it('refuses an RSA key for ES256, naming the file', async () => {
    const dir = await freshDir();
    await writeKey(dir, 'good.pem', ecPem());
    const bad = await writeKey(dir, 'rsa.pem', rsaPem());
    await assert.rejects(loadSigningKeysDir(dir, 'ES256'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.ok(error.message.includes(bad), `names ${bad}: ${error.message}`);
      assert.match(error.message, /ES256/);
      return true;
    });
  });

  it('refuses a P-384 key for ES256, naming the file', async () => {
    const dir = await freshDir();
    const bad = await writeKey(dir, 'p384.pem', ecPem('P-384'));
    await assert.rejects(loadSigningKeysDir(dir, 'ES256'), (error: unknown) => error instanceof Error && error.message.includes(bad));
  });

  it('never puts key material in the error', async () => {
    const dir = await freshDir();
    const pem = rsaPem();
    await writeKey(dir, 'rsa.pem', pem);
    const body = pem.split('\n')[1] ?? '';
    assert.ok(body.length > 20);
    await assert.rejects(loadSigningKeysDir(dir, 'ES256'), (error: unknown) => error instanceof Error && !error.message.includes(body));
  });

  it('refuses an empty directory, naming it', async () => {
    const dir = await freshDir();
    await assert.rejects(loadSigningKeysDir(dir, 'ES256'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.ok(error.message.startsWith(`${dir}:`), error.message);
      assert.match(error.message, /no PKCS#8 PEM private keys/);
      return true;
    });
  });

  it('refuses a directory holding only files that are not keys', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'notes.txt'), 'nothing here');
    await writeKey(dir, '.key.pem', ecPem());
    await assert.rejects(loadSigningKeysDir(dir, 'ES256'), /no PKCS#8 PEM private keys/);
  });

  it('refuses a directory that does not exist', async () => {
    await assert.rejects(loadSigningKeysDir(join(root, 'does-not-exist'), 'ES256'), (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT');
  });
});

describe('jwksDocument', () => {
  const scratch = useScratchDir('signing-jwks-');

  it('publishes public members with kid, alg and use: sig, and no private member', async () => {
    const pems = [ecPem(), ecPem()];
    await writeFile(scratch.file('a.pem'), pems[0] ?? '');
    await writeFile(scratch.file('b.pem'), pems[1] ?? '');
    const keys = await loadSigningKeysDir(scratch.path, 'ES256');
    const document = jwksDocument(keys);
    assert.equal(document.keys.length, 2);
    for (const [i, jwk] of document.keys.entries()) {
      assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      assert.equal(jwk.kty, 'EC');
      assert.equal(jwk.crv, 'P-256');
      assert.equal(jwk.alg, 'ES256');
      assert.equal(jwk.use, 'sig');
      assert.equal(jwk.d, undefined);
      assert.equal(jwk.kid, keys.published()[i]?.kid);
      // The kid is the thumbprint of exactly the published public key.
      assert.equal(jwk.kid, await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, 'sha256'));
    }
    assert.deepEqual(
      document.keys.map((k) => k.kid).sort(),
      (await Promise.all(pems.map(thumbprintOf))).sort(),
    );
    assert.equal(JSON.stringify(document).includes('"d"'), false);
  });

  it('verifies a token signed by the active key', async () => {
    const keys = await loadSigningKeysDir(scratch.path, 'ES256');
    const active = keys.active();
    assert.ok(active !== undefined);
    const token = await signAccessToken({ sub: 'x', exp: 4_102_444_800 }, active);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwksDocument(keys)));
    assert.equal(payload.sub, 'x');
    assert.equal(protectedHeader.kid, active.kid);
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(protectedHeader.typ, 'JWT');
  });

  it('returns copies: mutating the document does not change the published keys', async () => {
    const keys = await loadSigningKeysDir(scratch.path, 'ES256');
    const first = jwksDocument(keys);
    const jwk = first.keys[0];
    assert.ok(jwk !== undefined);
    jwk.d = 'tampered';
    assert.equal(jwksDocument(keys).keys[0]?.d, undefined);
  });
});
