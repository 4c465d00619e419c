import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile, ConfigError } from '../../server/config/load-config.js';
import type { BrokerConfig } from '../../server/config/schema.js';
import { chooseListenPath } from '../tyk-kit/api-listen-path.js';
import { grantablePolicies } from '../tyk-kit/grantable-policies.js';
import { DEFAULT_JWKS_CACHE_SECONDS, DEFAULT_TYK_ORG_ID, type TykApiOptions } from '../tyk-kit/tyk-api-options.js';
import { buildTykOasApiDefinition } from '../tyk-kit/tyk-oas-api-definition.js';
import { buildTykClassicApiDefinition } from '../tyk-kit/tyk-classic-api-definition.js';
import { buildTykPolicies, buildDescribedTykPolicy, tykPolicyRecord, DEFAULT_POLICY_LIMITS, type TykPolicy, type TykPolicyLimits } from '../tyk-kit/tyk-policies.js';

export const TYK_USAGE = `Usage: token-broker tyk <api|policies> --config FILE --api-id ID [options]

  tyk api --config FILE --api-id ID --upstream URL [--listen-path PATH] [options]
      Print (JSON) a Tyk API definition that accepts exactly the broker's tokens: signature by the broker's
      JWKS, signing family, issuer, audiences, policy claim and scope-to-policy mapping.
      --listen-path PATH          Where Tyk listens, such as /orders/ (default: the API's listen path in the
                                  configuration's apis block; when given, it must be that one)
      --format oas|classic        Tyk OAS definition (default; needs Tyk v5.10+ for issuer and audience
                                  checks) or classic definition (never checks iss or aud)
      --name NAME                 API name (default: the API id)
      --org-id ORG                Tyk org_id; must equal the policies' (default: ${DEFAULT_TYK_ORG_ID})
      --jwks-cache-seconds N      How long Tyk caches the broker's JWKS, OAS only (default: ${DEFAULT_JWKS_CACHE_SECONDS}).
                                  A new signing key must be published for longer than this before it signs.

  tyk policies --config FILE [--api-id ID] [options]
      A Tyk policy for every policy described under \`policies\` in the configuration (its APIs, routes as
      allowed_urls, rate limit and quota) and for every other policy ID the rules can grant, which then
      needs --api-id and is granted that whole API.
      --api-id ID                 API granted whole to the policies the configuration does not describe
      --api-name NAME             API name in their access_rights (default: the API id)
      --org-id ORG                Tyk org_id; must equal the API's (default: ${DEFAULT_TYK_ORG_ID})
      --format dir|record         dir (default): one {id}.json per policy, for policies.policy_path;
                                  record: one object mapping id -> policy, for policies.policy_record_name
      --out DIR                   Write the files into DIR (dir: {id}.json each; record: policies.json)
                                  instead of printing them (dir prints a JSON array)
      --rate N --per SECONDS      Rate limit per workload identity, for policies that set none
                                  (default: ${DEFAULT_POLICY_LIMITS.rate} per ${DEFAULT_POLICY_LIMITS.per} s); the same for the quota flags
      --quota-max N               Requests per quota period; --quota-max=-1 is unlimited (default: ${DEFAULT_POLICY_LIMITS.quotaMax})
      --quota-renewal-rate SECONDS  Quota period (default: ${DEFAULT_POLICY_LIMITS.quotaRenewalRate})

Policies containing "{" are templates, resolved per request: they are left out, with a warning.
Exit status: 0 success; 1 the configuration is invalid; 2 usage error.`;

/** A command-line mistake: reported with the usage, exit status 2. */
class UsageError extends Error {}

/** IDs end up in Tyk URLs (/tyk/cache/jwks/{apiID}) and file names: keep them to a safe alphabet. */
const API_ID = /^[A-Za-z0-9._-]+$/;

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${flag} is required`);
  return value;
}

function integerFlag(value: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return parsed;
}

function positiveNumberFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed > 0) || !Number.isFinite(parsed)) throw new UsageError(`--${flag} must be a positive number, got "${value}"`);
  return parsed;
}

function nameFlag(value: string | undefined, flag: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (!/\S/.test(value)) throw new UsageError(`--${flag} must not be blank`);
  return value;
}

function apiIdFlag(value: string | undefined): string {
  const apiId = required(value, 'api-id');
  if (!API_ID.test(apiId)) throw new UsageError(`--api-id must be letters, digits, ".", "_" and "-", got "${apiId}"`);
  return apiId;
}

/** Undefined when not given: the configuration's apis block may name it (chooseListenPath). */
function listenPathFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!value.startsWith('/') || /\s/.test(value)) throw new UsageError(`--listen-path must be a path starting with "/", such as /orders/, got "${value}"`);
  return value;
}

function upstreamFlag(value: string | undefined): string {
  const url = required(value, 'upstream');
  if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) throw new UsageError(`--upstream must be an http(s) URL, got "${url}"`);
  return url;
}

function oneOf<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T {
  if (value === undefined) return choices[0] as T;
  const choice = choices.find((c) => c === value);
  if (choice === undefined) throw new UsageError(`--${flag} must be ${choices.join(' or ')}, got "${value}"`);
  return choice;
}

/** Templated policies cannot be listed or mapped statically; say which, so the operator adds them in Tyk. */
function warnTemplated(config: BrokerConfig): readonly string[] {
  const { grantable, templated } = grantablePolicies(config.rules);
  for (const policy of templated) {
    console.error(`token-broker tyk: warning: policy "${policy}" is a template resolved per request; it is not statically grantable and was left out`);
  }
  return grantable;
}

/**
 * The generated files depend on neither PORT nor REDIS_URL: an environment meant for `serve` must not make
 * generation fail, so the configuration is validated as check-config does, without environment overrides.
 */
function loadConfig(path: string): Promise<BrokerConfig> {
  return loadConfigFile(path, {});
}

/** Node's parseArgs reports unknown options, missing values and stray positionals with these codes. */
function isParseArgsError(error: unknown): error is Error {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

async function apiCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      'api-id': { type: 'string' },
      'listen-path': { type: 'string' },
      upstream: { type: 'string' },
      format: { type: 'string' },
      name: { type: 'string' },
      'org-id': { type: 'string' },
      'jwks-cache-seconds': { type: 'string' },
    },
  });
  const configPath = required(values.config, 'config');
  const apiId = apiIdFlag(values['api-id']);
  const listenPathGiven = listenPathFlag(values['listen-path']);
  const flags = {
    apiId,
    name: nameFlag(values.name, 'name', apiId),
    orgId: values['org-id'] ?? DEFAULT_TYK_ORG_ID,
    upstreamUrl: upstreamFlag(values.upstream),
    jwksCacheSeconds: integerFlag(values['jwks-cache-seconds'], 'jwks-cache-seconds', DEFAULT_JWKS_CACHE_SECONDS, 1, 86400),
  };
  const format = oneOf(values.format, 'format', ['oas', 'classic'] as const);
  const loaded = await loadConfig(configPath);
  const listenPath = chooseListenPath(loaded, apiId, listenPathGiven);
  if ('problem' in listenPath) throw new UsageError(listenPath.problem);
  const options: TykApiOptions = { ...flags, listenPath: listenPath.listenPath };
  warnTemplated(loaded);
  if (format === 'classic' && values['jwks-cache-seconds'] !== undefined) {
    console.error('token-broker tyk: warning: classic API definitions have no per-API JWKS cache timeout; Tyk applies its gateway-wide one (240 s by default)');
  }
  const definition = format === 'oas' ? buildTykOasApiDefinition(loaded, options) : buildTykClassicApiDefinition(loaded, options);
  console.log(JSON.stringify(definition, null, 2));
  return 0;
}

/** A policy ID becomes a file name in the dir format: refuse what would escape or confuse the directory. */
function unsafeFileName(id: string): boolean {
  return id === '.' || id === '..' || /[/\\\0]/.test(id);
}

async function policiesCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      'api-id': { type: 'string' },
      'api-name': { type: 'string' },
      'org-id': { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      rate: { type: 'string' },
      per: { type: 'string' },
      'quota-max': { type: 'string' },
      'quota-renewal-rate': { type: 'string' },
    },
  });
  const configPath = required(values.config, 'config');
  const apiId = values['api-id'] === undefined ? undefined : apiIdFlag(values['api-id']);
  const format = oneOf(values.format, 'format', ['dir', 'record'] as const);
  const quotaMax = integerFlag(values['quota-max'], 'quota-max', DEFAULT_POLICY_LIMITS.quotaMax, -1, Number.MAX_SAFE_INTEGER);
  // Tyk reads a quota of 0 as "no requests at all", never what an operator means here.
  if (quotaMax === 0) throw new UsageError('--quota-max must be -1 (unlimited) or at least 1, got "0"');
  const limits: TykPolicyLimits = {
    rate: positiveNumberFlag(values.rate, 'rate', DEFAULT_POLICY_LIMITS.rate),
    per: positiveNumberFlag(values.per, 'per', DEFAULT_POLICY_LIMITS.per),
    quotaMax,
    quotaRenewalRate: integerFlag(values['quota-renewal-rate'], 'quota-renewal-rate', DEFAULT_POLICY_LIMITS.quotaRenewalRate, 1, Number.MAX_SAFE_INTEGER),
  };
  if (values.out === '') throw new UsageError('--out must name a directory');
  const orgId = values['org-id'] ?? DEFAULT_TYK_ORG_ID;
  const api = apiId === undefined ? undefined : { apiId, apiName: nameFlag(values['api-name'], 'api-name', apiId), orgId };
  const loaded = await loadConfig(configPath);
  const described = loaded.policies ?? {};
  const grantable = warnTemplated(loaded);
  const undescribed = grantable.filter((id) => !Object.hasOwn(described, id));
  if (undescribed.length > 0 && api === undefined) {
    const list = undescribed.map((id) => `"${id}"`).join(', ');
    throw new UsageError(`--api-id is required: the rules grant ${list}, which the configuration's policies block does not describe`);
  }
  const wholeApi = api === undefined ? [] : buildTykPolicies(undescribed, api, limits);
  // Rule order first (what Tyk must know), then described policies only templates can produce.
  const ids = [...grantable, ...Object.keys(described).filter((id) => !grantable.includes(id))];
  const policies: TykPolicy[] = ids.flatMap((id) => {
    const spec = described[id];
    return spec !== undefined ? [buildDescribedTykPolicy(id, spec, orgId, limits)] : wholeApi.filter((policy) => policy.id === id);
  });

  if (values.out === undefined) {
    console.log(JSON.stringify(format === 'dir' ? policies : tykPolicyRecord(policies), null, 2));
    return 0;
  }
  const unsafe = format === 'dir' ? policies.find((policy) => unsafeFileName(policy.id)) : undefined;
  if (unsafe !== undefined) {
    console.error(`token-broker tyk: policy ID "${unsafe.id}" cannot be a file name; use --format record`);
    return 1;
  }
  await mkdir(values.out, { recursive: true });
  if (format === 'dir') {
    for (const policy of policies) await writeFile(join(values.out, `${policy.id}.json`), `${JSON.stringify(policy, null, 2)}\n`);
    console.log(`wrote ${policies.length} polic${policies.length === 1 ? 'y' : 'ies'} to ${values.out}`);
  } else {
    const file = join(values.out, 'policies.json');
    await writeFile(file, `${JSON.stringify(tykPolicyRecord(policies), null, 2)}\n`);
    console.log(`wrote ${policies.length} polic${policies.length === 1 ? 'y' : 'ies'} to ${file}`);
  }
  return 0;
}

/** `token-broker tyk api|policies ...`: generates what Tyk needs to accept the broker's tokens. */
export async function tyk(argv: readonly string[]): Promise<number> {
  const [subcommand, ...args] = argv;
  if (subcommand === 'help' || subcommand === '--help' || subcommand === '-h') {
    console.log(TYK_USAGE);
    return 0;
  }
  try {
    switch (subcommand) {
      case 'api':
        return await apiCommand(args);
      case 'policies':
        return await policiesCommand(args);
      default:
        throw new UsageError(subcommand === undefined ? 'missing subcommand' : `unknown subcommand "${subcommand}"`);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    if (error instanceof UsageError || isParseArgsError(error)) {
      console.error(`token-broker tyk: ${error.message}\n\n${TYK_USAGE}`);
      return 2;
    }
    throw error;
  }
}
