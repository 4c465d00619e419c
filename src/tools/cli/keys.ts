import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { loadConfigFile, ConfigError, type ConfigEnvironment } from '../../server/config/load-config.js';
import { configWarnings } from '../../server/config/validate-config.js';
import { computeKeyStates, keyLifecycleSettings, type KeyStateInfo } from '../../server/mint/key-lifecycle.js';
import { keyMetadataDocument, keyMetadataFileName, readSigningKeysDir, type SigningKeysDirContents } from '../../server/mint/signing-key-set.js';
import { signingKeyFromPem } from '../../server/mint/signing-key.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../server/protocol.js';
import { DEFAULT_SIGNING_ALGORITHM, type BrokerConfig } from '../../server/config/schema.js';

export const KEYS_USAGE = `Usage: token-broker keys <command> [options]

Commands:
  generate [--alg ES256|ES384|RS256|PS256] [--config FILE] --out DIR
      Write a new PKCS#8 private key (mode 0600) and its metadata file {"notBefore": now, "kid"} into DIR,
      named key-<UTC time>-<kid prefix>.pem/.json, and print its kid. It is published at once and signs
      after signing.prePublishSeconds. The algorithm is --alg, else signing.algorithm of --config, else
      ${DEFAULT_SIGNING_ALGORITHM} (the configuration's default); an --alg other than --config's is refused.
  generate [--alg ALG] [--config FILE] --k8s-secret NAME [--namespace NS]
      Instead print a Kubernetes Secret manifest (type Opaque, base64 data) holding the key and its metadata.
      Add it to the existing Secret without removing the older keys:
        token-broker keys generate --alg ES256 --k8s-secret NAME -n NS > key.yaml
        kubectl patch secret NAME -n NS --type merge --patch-file key.yaml
  list --config FILE
      Read the configuration and its signing.keysDir, and print every key with its state (pending, active,
      retiring, retired), creation time, file, and what happens next to it and when.
  help
      Show this help.

Exit status: 0 success; 1 configuration or key errors; 2 usage error.`;

class UsageError extends Error {}

const RSA_MODULUS_BITS = 2048;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isSigningAlgorithm(value: string): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

function newPrivateKeyPem(alg: SigningAlgorithm): string {
  const pair =
    alg === 'ES256' || alg === 'ES384'
      ? generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' })
      : generateKeyPairSync('rsa', { modulusLength: RSA_MODULUS_BITS });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** `20250131T090000Z`: sorts by time, and is a valid file name and Secret data key. */
function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** Writes through a dot-named temporary file and a rename: a watching broker skips dot names and never sees half a key. */
async function writeAtomically(path: string, dir: string, name: string, text: string, mode: number): Promise<void> {
  const temporary = join(dir, `.${name}.tmp`);
  try {
    await writeFile(temporary, text, { mode, flag: 'wx' });
    // The umask may have narrowed the mode; the key must end up exactly owner-only.
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** The options of `keys generate`, for parseArgs and for the message naming them when one is unknown. */
const GENERATE_OPTIONS = {
  alg: { type: 'string' },
  config: { type: 'string', short: 'c' },
  out: { type: 'string' },
  'k8s-secret': { type: 'string' },
  namespace: { type: 'string', short: 'n' },
} as const;

/** Options users reach for that are spelled differently here. */
const LIKELY_MEANT: Readonly<Record<string, string>> = {
  '--dir': '--out DIR',
  '--output': '--out DIR',
  '-o': '--out DIR',
  '--algorithm': '--alg ALG',
  '--secret': '--k8s-secret NAME',
  '--ns': '--namespace NS',
};

/**
 * parseArgs's own errors ("Unknown option '--dir'. To specify a positional argument starting with a '-' ...")
 * as usage errors that name the command, its options and the likely intended one.
 */
function parseArgsError(command: string, options: Record<string, unknown>, error: unknown): UsageError | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  const known = Object.keys(options).map((name) => `--${name}`).join(', ');
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /option '([^']+)'/i.exec(message)?.[1] ?? 'given';
    const meant = LIKELY_MEANT[option.split('=')[0] ?? option];
    const hint = meant !== undefined && (meant.split(' ')[0] ?? '').slice(2) in options ? meant : undefined;
    return new UsageError(`keys ${command} has no option ${option}${hint === undefined ? '' : ` (did you mean ${hint}?)`}; its options are ${known}`);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    // "Option '-c, --config <value>' argument missing": the long name is the one users read in the usage.
    const option = /option '(?:-\w, )?(--?[\w-]+)/i.exec(message)?.[1] ?? 'an option';
    return new UsageError(`${option} needs a value`);
  }
  return undefined;
}

/**
 * The algorithm of a new key: --alg, else signing.algorithm of --config (a key of another algorithm would be
 * refused by that broker), else the configuration's default.
 */
async function generateAlgorithm(alg: string | undefined, configPath: string | undefined, env: ConfigEnvironment): Promise<SigningAlgorithm> {
  if (alg !== undefined && !isSigningAlgorithm(alg)) throw new UsageError(`--alg must be one of ${SIGNING_ALGORITHMS.join(', ')}, got "${alg}"`);
  if (configPath === undefined) return alg ?? DEFAULT_SIGNING_ALGORITHM;
  const configured = (await loadConfigFile(configPath, env)).signing.algorithm;
  if (alg !== undefined && alg !== configured) {
    throw new UsageError(`--alg ${alg} differs from signing.algorithm ${configured} in ${configPath}: that broker would refuse the key (omit --alg to use ${configured})`);
  }
  return configured;
}

async function generate(args: readonly string[], env: ConfigEnvironment, now: () => number): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: GENERATE_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw parseArgsError('generate', GENERATE_OPTIONS, error) ?? error;
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  let alg: SigningAlgorithm;
  try {
    alg = await generateAlgorithm(values.alg, values.config, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  const secretName = values['k8s-secret'];
  if ((values.out === undefined) === (secretName === undefined)) throw new UsageError('give exactly one of --out DIR or --k8s-secret NAME');
  if (values.namespace !== undefined && secretName === undefined) throw new UsageError('--namespace goes with --k8s-secret');
  if (secretName !== undefined && !DNS_SUBDOMAIN.test(secretName)) throw new UsageError(`--k8s-secret "${secretName}" is not a valid Kubernetes name`);
  if (values.namespace !== undefined && !DNS_LABEL.test(values.namespace)) throw new UsageError(`--namespace "${values.namespace}" is not a valid namespace`);

  const createdAt = now();
  const pem = newPrivateKeyPem(alg);
  // The kid comes from the broker's own loader, so it is exactly the kid the broker will publish.
  const { kid } = await signingKeyFromPem(pem, alg, 'generated', createdAt);
  const name = `key-${compactTime(createdAt)}-${kid.slice(0, 8)}`;
  const pemName = `${name}.pem`;
  const metadataName = keyMetadataFileName(pemName);
  const metadata = keyMetadataDocument(kid, createdAt);

  if (secretName !== undefined) {
    const manifest = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: secretName,
        ...(values.namespace !== undefined && { namespace: values.namespace }),
        labels: { 'app.kubernetes.io/name': 'workload-token-broker', 'app.kubernetes.io/component': 'signing-keys' },
      },
      type: 'Opaque',
      // base64 `data`, not `stringData`: merge patches and server-side apply treat it like any other field.
      data: { [pemName]: Buffer.from(pem).toString('base64'), [metadataName]: Buffer.from(metadata).toString('base64') },
    };
    const where = values.namespace !== undefined ? ` -n ${values.namespace}` : '';
    console.log(
      [
        `# token-broker signing key ${kid} (${alg}), notBefore ${new Date(createdAt).toISOString()}.`,
        '# Add it next to the keys already in the Secret (applying this manifest alone with client-side',
        '# `kubectl apply` would delete the keys a previous apply wrote, and with them every token they signed):',
        `#   kubectl patch secret ${secretName}${where} --type merge --patch-file THIS_FILE`,
        '# First deployment (no Secret yet): kubectl apply -f THIS_FILE',
        stringify(manifest, { lineWidth: 0 }).trimEnd(),
      ].join('\n'),
    );
    console.error(`token-broker keys: kid ${kid}`);
    return 0;
  }

  const dir = values.out ?? '.';
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Metadata first: a key that appears before its metadata would briefly be dated by its mtime instead.
  await writeAtomically(join(dir, metadataName), dir, metadataName, metadata, 0o644);
  await writeAtomically(join(dir, pemName), dir, pemName, pem, 0o600);
  console.log(kid);
  console.error(`token-broker keys: wrote ${join(dir, pemName)} and ${metadataName} (notBefore ${new Date(createdAt).toISOString()})`);
  return 0;
}

/** `4m10s`, `2h5m`, `3d4h`: two units are enough to read a schedule. */
function formatDuration(ms: number): string {
  let seconds = Math.round(Math.abs(ms) / 1000);
  const units: [string, number][] = [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  for (const [unit, size] of units) {
    if (parts.length === 2) break;
    const count = Math.floor(seconds / size);
    seconds -= count * size;
    // Leading zero units are dropped; after the first one, a zero still says "exactly" (1h0m).
    if (count > 0 || parts.length > 0) parts.push(`${count}${unit}`);
  }
  return parts.length === 0 ? '0s' : parts.join('');
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');

/** When a transition happens, as `keys list` shows it: `2026-01-31T09:00:00Z (in 4m46s)`. */
function when(at: number, now: number): string {
  return `${iso(at)} (${at >= now ? 'in ' : ''}${formatDuration(at - now)}${at < now ? ' ago' : ''})`;
}

/**
 * What happens next to a key, in words: the lifecycle's next transition and what it means for signing and for
 * the JWKS. An early-active key (the only key, not yet published for signing.prePublishSeconds) stays active:
 * what changes then is that verifiers have had time to fetch it.
 */
export function describeNextStep(info: KeyStateInfo, now: number): string {
  const at = info.nextTransitionAt;
  switch (info.state) {
    case 'pending':
      return at === undefined ? 'published; waits for signing.prePublishSeconds' : `published now; starts signing at ${when(at, now)}`;
    case 'active':
      if (at === undefined) return 'signs until a newer key becomes active (keys generate)';
      if (info.nextState === 'active') return `signs early (published less than signing.prePublishSeconds); published long enough at ${when(at, now)}, then signs until a newer key takes over`;
      return `signs until ${when(at, now)}, when a newer key takes over; then retiring (still published)`;
    case 'retiring':
      return at === undefined ? 'published for tokens it signed; no longer signs' : `no longer signs; leaves the JWKS at ${when(at, now)}, then the file can be deleted`;
    case 'retired':
      return 'not published, no longer used: the file can be deleted';
  }
}

/** The table `keys list` prints: one row per key, newest first. */
export function formatKeyTable(
  rows: readonly { kid: string; alg: string; createdAt: number; createdFrom: string; info: KeyStateInfo; file: string }[],
  now: number,
): string {
  const header = ['KID', 'ALG', 'STATE', 'CREATED', 'FILE', 'NEXT'];
  const body = rows.map((row) => [
    row.kid,
    row.alg,
    row.info.state,
    `${iso(row.createdAt)}${row.createdFrom === 'mtime' ? ' (mtime)' : ''}`,
    row.file,
    describeNextStep(row.info, now),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...body.map((cells) => (cells[i] ?? '').length)));
  return [header, ...body].map((cells) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

async function list(args: readonly string[], env: ConfigEnvironment, now: () => number): Promise<number> {
  const listOptions = { config: { type: 'string', short: 'c' } } as const;
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: listOptions, allowPositionals: true, strict: true });
  } catch (error) {
    throw parseArgsError('list', listOptions, error) ?? error;
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.config === undefined) throw new UsageError('--config FILE is required');
  let config: BrokerConfig;
  try {
    config = await loadConfigFile(values.config, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  for (const warning of configWarnings(config)) console.error(`warning: ${warning}`);
  const dir = config.signing.keysDir;
  if (dir === undefined) {
    console.error(`token-broker keys list: ${values.config}: signing.keysDir is not set`);
    return 1;
  }
  let contents: SigningKeysDirContents;
  try {
    contents = await readSigningKeysDir(dir, config.signing.algorithm);
  } catch (error) {
    console.error(`token-broker keys list: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  const at = now();
  const evaluation = computeKeyStates(
    contents.files.map((f) => f.key),
    at,
    keyLifecycleSettings(config.signing, config.tokens),
  );
  const rows = [...contents.files]
    .sort((a, b) => b.key.createdAt - a.key.createdAt || a.key.kid.localeCompare(b.key.kid))
    .flatMap((f) => {
      const info = evaluation.states.get(f.key.kid);
      return info === undefined ? [] : [{ kid: f.key.kid, alg: f.key.alg, createdAt: f.key.createdAt, createdFrom: f.createdFrom, info, file: f.key.source }];
    });
  console.log(formatKeyTable(rows, at));
  if (evaluation.activeEarly && evaluation.active !== undefined) {
    console.error(`warning: no key has been published for signing.prePublishSeconds yet; ${evaluation.active.kid} signs early, and Tyk may refuse its tokens until its cached JWKS expires`);
  }
  if (contents.kubernetesMount && contents.files.some((f) => f.createdFrom === 'mtime')) {
    console.error('warning: keys marked (mtime) have no metadata file; in a Kubernetes Secret every update resets their modification time and restarts their lifecycle');
  }
  return 0;
}

/** `token-broker keys generate|list|help`. Exit 0 success, 1 configuration or key errors, 2 usage errors. */
export async function keys(args: readonly string[], env: ConfigEnvironment, now: () => number = Date.now): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'generate':
        return await generate(rest, env, now);
      case 'list':
        return await list(rest, env, now);
      case 'help':
      case '--help':
      case '-h':
        console.log(KEYS_USAGE);
        return 0;
      default:
        throw new UsageError(command === undefined ? 'a command is required' : `unknown command "${command}"`);
    }
  } catch (error) {
    // parseArgs reports unknown or malformed options with these codes: usage errors, like ours.
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`token-broker keys: ${error instanceof Error ? error.message : String(error)}\n\n${KEYS_USAGE}`);
      return 2;
    }
    throw error;
  }
}
