import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey, signingKeyFromPem, type SigningKey } from './signing-key.js';
import type { JWK } from 'jose';
import type { SigningAlgorithm } from '../protocol.js';

/** The keys the broker signs with and publishes. */
export interface SigningKeySet {
  /** The key new tokens are signed with; undefined when nothing can sign. */
  active(): SigningKey | undefined;
  /** Every key whose tokens may still be presented, for the JWKS. */
  published(): readonly SigningKey[];
}

/** A fixed set of keys: the newest signs, all are published. */
export function staticSigningKeySet(keys: readonly SigningKey[]): SigningKeySet {
  const sorted = [...keys].sort((a, b) => b.createdAt - a.createdAt || a.kid.localeCompare(b.kid));
  const frozen = Object.freeze(sorted);
  return { active: () => frozen[0], published: () => frozen };
}

/** The public JWK Set document for a key set. */
export function jwksDocument(keys: SigningKeySet): { keys: JWK[] } {
  return { keys: keys.published().map((key) => ({ ...key.publicJwk })) };
}

/**
 * Loads every PEM private key in a directory. Dot-entries are skipped: Kubernetes mounts Secrets through
 * `..data` symlinks next to the visible names. The newest key (by modification time, then kid) signs.
 */
export async function loadSigningKeysDir(dir: string, alg: SigningAlgorithm): Promise<SigningKeySet> {
  const names = (await readdir(dir)).filter((name) => !name.startsWith('.')).sort();
  const keys: SigningKey[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(path);
    if (!info.isFile()) continue;
    const pem = await readFile(path, 'utf8');
    // A key in another PEM format is a mistake worth stopping for, not a file to skip silently.
    const otherFormat = /-----BEGIN (EC PRIVATE KEY|RSA PRIVATE KEY|ENCRYPTED PRIVATE KEY)-----/.exec(pem);
    if (otherFormat) {
      throw new Error(`${path}: a "${otherFormat[1]}" PEM; convert it to unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): openssl pkcs8 -topk8 -nocrypt -in KEY`);
    }
    if (!pem.includes('-----BEGIN PRIVATE KEY-----')) continue;
    try {
      keys.push(await signingKeyFromPem(pem, alg, path, info.mtimeMs));
    } catch (error) {
      throw new Error(`${path}: not a PKCS#8 ${alg} private key (${error instanceof Error ? error.message : String(error)})`);
    }
  }
  if (keys.length === 0) throw new Error(`${dir}: no PKCS#8 PEM private keys ("-----BEGIN PRIVATE KEY-----")`);
  return staticSigningKeySet(keys);
}

/** One fresh key, for dev mode. */
export async function ephemeralSigningKeySet(alg: SigningAlgorithm, now: number): Promise<SigningKeySet> {
  return staticSigningKeySet([await generateSigningKey(alg, now)]);
}
