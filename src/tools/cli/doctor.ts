import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfigFile, ConfigError, type ConfigEnvironment } from '../../server/config/load-config.js';
import { configWarnings } from '../../server/config/validate-config.js';
import type { BrokerConfig } from '../../server/config/schema.js';
import { check, exitStatusOf, formatCheck, type DoctorCheck } from '../doctor/doctor-check.js';
import { runDoctor, type DoctorOptions, type TykTarget } from '../doctor/run-doctor.js';

export const DOCTOR_USAGE = `Usage: token-broker doctor --config FILE [--tyk-url URL --tyk-secret-file FILE] [--api-id ID]

Checks the chain a token travels, one line per check (OK, WARN or FAIL, with what to do):
  - the configuration is valid (as serve reads it, with PORT, REDIS_URL and KUBECONFIG);
  - every issuer's discovery and JWKS answer through the broker's own fetch (caFile, bearerTokenFile), or its
    jwksFile is readable, and the keys are usable; the issuer's clock (HTTP Date) is within its clockSkewSeconds;
  - signing.keysDir holds a key that signs, and the pre-publish window is longer than Tyk's JWKS cache;
  - the running broker serves the active key at {server.publicUrl}/.well-known/jwks.json;
  - with --tyk-url: the gateway answers /hello, has every policy the rules can grant, and an API (or the one
    named by --api-id) takes the broker's JWKS with the right signing family and settings.

  --config FILE           the broker configuration (required)
  --tyk-url URL           the Tyk Gateway's base URL, e.g. http://tyk-gateway:8080
  --tyk-secret-file FILE  a file holding the gateway secret (read, trimmed, never printed); required with --tyk-url
  --api-id ID             check this Tyk API instead of every API that names the broker's JWKS
  --timeout-seconds N     bound on each network request (default 5)

Exit status: 0 nothing failed (warnings allowed); 1 a check failed; 2 usage error.`;

class UsageError extends Error {}

/** Node's parseArgs reports unknown options, missing values and stray positionals with these codes. */
function isParseArgsError(error: unknown): error is Error {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

interface DoctorArgs {
  readonly configPath: string;
  readonly tykUrl: string | undefined;
  readonly secretFile: string | undefined;
  readonly apiId: string | undefined;
  readonly timeoutMs: number;
}

function parseDoctorArgs(args: readonly string[]): DoctorArgs {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      'tyk-url': { type: 'string' },
      'tyk-secret-file': { type: 'string' },
      'api-id': { type: 'string' },
      'timeout-seconds': { type: 'string' },
    },
  });
  if (values.config === undefined || values.config === '') throw new UsageError('--config FILE is required');
  const tykUrl = values['tyk-url'];
  const secretFile = values['tyk-secret-file'];
  if (tykUrl !== undefined && (!URL.canParse(tykUrl) || !['http:', 'https:'].includes(new URL(tykUrl).protocol))) {
    throw new UsageError(`--tyk-url must be an http(s) URL, got "${tykUrl}"`);
  }
  // The admin API needs the secret; a secret without a gateway is a mistake worth saying.
  if ((tykUrl === undefined) !== (secretFile === undefined)) throw new UsageError('--tyk-url and --tyk-secret-file go together');
  const apiId = values['api-id'];
  if (apiId !== undefined && tykUrl === undefined) throw new UsageError('--api-id needs --tyk-url');
  if (apiId !== undefined && !/^[A-Za-z0-9._-]+$/.test(apiId)) throw new UsageError(`--api-id must be letters, digits, ".", "_" and "-", got "${apiId}"`);
  const timeout = values['timeout-seconds'];
  const seconds = timeout === undefined ? 5 : /^\d+(\.\d+)?$/.test(timeout) ? Number(timeout) : Number.NaN;
  if (!(seconds > 0 && seconds <= 120)) throw new UsageError(`--timeout-seconds must be a number above 0 and at most 120, got "${timeout}"`);
  return { configPath: values.config, tykUrl, secretFile, apiId, timeoutMs: Math.round(seconds * 1000) };
}

/** Reads the gateway secret: the file's content without surrounding whitespace. The reason when it cannot. */
async function readSecret(path: string): Promise<{ secret: string } | { failure: DoctorCheck }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return { failure: check('FAIL', 'tyk-secret', `cannot read --tyk-secret-file ${path} (${reason})`, 'give a file holding the gateway secret') };
  }
  const secret = text.trim();
  if (secret === '') return { failure: check('FAIL', 'tyk-secret', `--tyk-secret-file ${path} is empty`, 'give a file holding the gateway secret') };
  return { secret };
}

/**
 * `token-broker doctor`: checks configuration, issuers, signing keys, the running broker's JWKS and, optionally,
 * Tyk, printing one line per check. Exit 0 when nothing failed, 1 when a check failed, 2 on a usage error.
 */
export async function doctor(args: readonly string[], env: ConfigEnvironment, options: Pick<DoctorOptions, 'now' | 'fetch'> = {}): Promise<number> {
  if (args[0] === 'help' || args[0] === '--help' || args[0] === '-h') {
    console.log(DOCTOR_USAGE);
    return 0;
  }
  let parsed: DoctorArgs;
  try {
    parsed = parseDoctorArgs(args);
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      console.error(`token-broker doctor: ${error.message}\n\n${DOCTOR_USAGE}`);
      return 2;
    }
    throw error;
  }

  const printed: DoctorCheck[] = [];
  const print = (result: DoctorCheck) => {
    printed.push(result);
    console.log(formatCheck(result));
  };

  let config: BrokerConfig;
  try {
    config = await loadConfigFile(parsed.configPath, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    print(check('FAIL', 'config', `${parsed.configPath} is invalid (${error.problems.length} problem(s))`, 'fix the fields below; token-broker check-config FILE prints the same'));
    for (const problem of error.problems) console.log(`       ${problem.path}: ${problem.message}`);
    return 1;
  }
  print(check('OK', 'config', `${parsed.configPath} is valid (${config.issuers.length} issuer(s), ${config.rules.length} rule(s))`));
  // The pre-publish warning has a check of its own below; other warnings are shown here.
  for (const warning of configWarnings(config)) {
    if (!warning.startsWith('signing.prePublishSeconds:')) print(check('WARN', 'config', warning));
  }

  let tyk: TykTarget | undefined;
  if (parsed.tykUrl !== undefined && parsed.secretFile !== undefined) {
    const secret = await readSecret(parsed.secretFile);
    if ('failure' in secret) print(secret.failure);
    else tyk = { url: parsed.tykUrl, secret: secret.secret, apiId: parsed.apiId };
  }

  await runDoctor(config, { ...options, tyk, timeoutMs: parsed.timeoutMs, onCheck: print });
  return exitStatusOf(printed);
}
