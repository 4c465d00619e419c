import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { generateSigningKey, signingKeyFromPem, type SigningKey } from './signing-key.js';
import type { JWK } from 'jose';
import type { SigningAlgorithm } from '../protocol.js';
import type { KeyStates } from './key-lifecycle.js';
import type { BrokerMetrics } from '../observability/metrics.js';

/** The keys the broker signs with and publishes. */
export interface SigningKeySet {
  /** The key new tokens are signed with; undefined when nothing can sign. */
  active(): SigningKey | undefined;
  /** Every key whose tokens may still be presented, for the JWKS. */
  published(): readonly SigningKey[];
  /** Every key's lifecycle state now. Absent on fixed sets: there the active key signs and the others are retiring. */
  states?(): KeyStates<SigningKey>;
  /** Calls `listener` after the active key, the published keys or any key's state changed; returns the unsubscribe. */
  onChange?(listener: () => void): () => void;
  /** Whether the latest read of the keys' source failed (the last good set stays in force). Absent on fixed sets. */
  status?(): { readonly lastError?: { readonly message: string; readonly since: number } };
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
 * Sets `signing_key_info` and `signing_key_state_change_timestamp_seconds` to the key set's current states, dropping
 * the series of keys it no longer publishes. Call it again whenever the set changes (`SigningKeySet.onChange`).
 */
export function recordSigningKeyStates(metrics: BrokerMetrics, keys: SigningKeySet): void {
  // Both resets and every set run in one synchronous stretch, so a scrape never sees a half-written set.
  metrics.signingKeyInfo.reset();
  metrics.signingKeyStateChange.reset();
  const lifecycle = keys.states?.();
  const active = keys.active();
  for (const key of keys.published()) {
    const info = lifecycle?.states.get(key.kid);
    const state = info?.state ?? (key === active ? 'active' : 'retiring');
    metrics.signingKeyInfo.set({ kid: key.kid, alg: key.alg, state }, 1);
    metrics.signingKeyStateChange.set({ kid: key.kid }, (info?.since ?? key.createdAt) / 1000);
  }
}

/** Where a key's creation time came from: its metadata file, or (without one) the key file's modification time. */
export type CreatedFrom = 'metadata' | 'mtime';

/** A key read from a keys directory. */
export interface SigningKeyFile {
  readonly key: SigningKey;
  readonly createdFrom: CreatedFrom;
}

/** What a keys directory holds. */
export interface SigningKeysDirContents {
  /** In file-name order. */
  readonly files: readonly SigningKeyFile[];
  /** The directory is a Kubernetes Secret/ConfigMap mount (it has a `..data` link). */
  readonly kubernetesMount: boolean;
}

/**
 * The metadata file of a key file: the same name with its extension replaced by `.json`
 * (`key-2025-01.pem` -> `key-2025-01.json`, `tls.key` -> `tls.json`).
 */
export function keyMetadataFileName(keyFileName: string): string {
  return `${keyFileName.replace(/\.[^.]*$/, '')}.json`;
}

/**
 * A key's metadata file. `notBefore` is the key's creation time, from which its whole lifecycle follows; `kid`, when
 * given, must be the key's kid, which catches a metadata file paired with the wrong key.
 */
const keyMetadataSchema = z.strictObject({
  notBefore: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time with a zone, such as 2025-01-31T09:00:00Z' }),
  kid: z.string().min(1).optional(),
});

/** The metadata document for a key: what `token-broker keys generate` writes next to the PEM. */
export function keyMetadataDocument(kid: string, notBefore: number): string {
  return `${JSON.stringify({ notBefore: new Date(notBefore).toISOString(), kid }, null, 2)}\n`;
}

async function readMetadata(path: string, kid: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new Error(`${path}: not JSON; expected {"notBefore": "2025-01-31T09:00:00Z"}`);
  }
  const parsed = keyMetadataSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
    const what = issue?.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : (issue?.message ?? 'invalid');
    throw new Error(`${path}: ${where}${what}`);
  }
  if (parsed.data.kid !== undefined && parsed.data.kid !== kid) {
    throw new Error(`${path}: kid ${parsed.data.kid} does not match the key's kid ${kid}`);
  }
  return Date.parse(parsed.data.notBefore);
}

/**
 * Reads every PEM private key in a directory, with its creation time: the `notBefore` of its metadata file
 * (see `keyMetadataFileName`) when there is one, else the file's modification time. Dot-entries are skipped:
 * Kubernetes mounts Secrets through `..data` symlinks next to the visible names. Throws, naming the file, on a
 * key that does not fit `alg`, a bad metadata file, or a directory without any key.
 */
export async function readSigningKeysDir(dir: string, alg: SigningAlgorithm): Promise<SigningKeysDirContents> {
  // In a Kubernetes mount, read through the resolved `..data` directory: the kubelet swaps that link atomically,
  // so resolving it once gives one consistent generation of every file (key and metadata), never a mix.
  let readFrom = dir;
  let kubernetesMount = false;
  try {
    readFrom = await realpath(join(dir, '..data'));
    kubernetesMount = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const names = (await readdir(readFrom)).filter((name) => !name.startsWith('.')).sort();
  const files: SigningKeyFile[] = [];
  const metadataOwners = new Map<string, string>();
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(join(readFrom, name));
    if (!info.isFile()) continue;
    const pem = await readFile(join(readFrom, name), 'utf8');
    // A key in another PEM format is a mistake worth stopping for, not a file to skip silently.
    const otherFormat = /-----BEGIN (EC PRIVATE KEY|RSA PRIVATE KEY|ENCRYPTED PRIVATE KEY)-----/.exec(pem);
    if (otherFormat) {
      throw new Error(`${path}: a "${otherFormat[1]}" PEM; convert it to unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): openssl pkcs8 -topk8 -nocrypt -in KEY`);
    }
    if (!pem.includes('-----BEGIN PRIVATE KEY-----')) continue;
    let key: SigningKey;
    try {
      key = await signingKeyFromPem(pem, alg, path, info.mtimeMs);
    } catch (error) {
      throw new Error(`${path}: not a PKCS#8 ${alg} private key (${error instanceof Error ? error.message : String(error)})`);
    }
    const metadataName = keyMetadataFileName(name);
    const owner = metadataOwners.get(metadataName);
    if (owner !== undefined) throw new Error(`${path}: ${owner} and ${name} would share the metadata file ${metadataName}; rename one`);
    metadataOwners.set(metadataName, name);
    const notBefore = await readMetadata(join(readFrom, metadataName), key.kid);
    files.push(
      notBefore === undefined
        ? { key, createdFrom: 'mtime' }
        : { key: Object.freeze({ ...key, createdAt: notBefore }), createdFrom: 'metadata' },
    );
  }
  if (files.length === 0) throw new Error(`${dir}: no PKCS#8 PEM private keys ("-----BEGIN PRIVATE KEY-----")`);
  return { files, kubernetesMount };
}

/**
 * Loads every PEM private key in a directory as a fixed set: the newest (by creation time, then kid) signs and all
 * are published, whatever their age. `serve` uses the time-driven `openSigningKeyDirectory` instead.
 */
export async function loadSigningKeysDir(dir: string, alg: SigningAlgorithm): Promise<SigningKeySet> {
  const { files } = await readSigningKeysDir(dir, alg);
  return staticSigningKeySet(files.map((file) => file.key));
}

/** One fresh key, for dev mode. */
export async function ephemeralSigningKeySet(alg: SigningAlgorithm, now: number): Promise<SigningKeySet> {
  return staticSigningKeySet([await generateSigningKey(alg, now)]);
}
