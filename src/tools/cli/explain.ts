import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfigFile, parseConfigText, ConfigError, type ConfigEnvironment } from '../../server/config/load-config.js';
import { compileRules, type CompiledRules } from '../../server/rules/compiled-rules.js';
import { deniedOutcome, explainDecision, type Explanation, type ExplanationVerification, type RefusalExplanation } from '../../server/explain/explain-decision.js';
import { parseIdentityFixture, resolveIdentityFixture } from '../explain/identity-fixture.js';
import { identityFromUnverifiedToken, UNVERIFIED_NOTE } from '../explain/unverified-token.js';
import { renderExplanation } from '../explain/render-explanation.js';
import { openedRoutes, renderOpenedRoutes } from '../tyk-kit/opened-routes.js';
import type { ConfigProblem } from '../../server/config/validate-config.js';
import type { BrokerConfig } from '../../server/config/schema.js';
import { BrokerError } from '../../server/errors.js';
import { parseResourceIndicator, type ResourceIndicator } from '../../server/rules/resource-indicator.js';

export const EXPLAIN_USAGE = `Usage: token-broker explain --config FILE (--token FILE | --identity FILE) [options]

  Explains, offline, what POST /token would decide for a workload: every rule with why it matched or not, the
  granted and requestable policies, and the outcome (the claims a token would carry, or the refusal).

  --config FILE       The broker configuration.
  --token FILE        A subject token (a JWT; "-" reads standard input). Decoded WITHOUT verifying it: its
                      signature, pod binding and Kubernetes labels are not checked.
  --identity FILE     An identity fixture (YAML; see test/fixtures/identities/README.md), with the labels the
                      Kubernetes API would return.
  --scope "A B"       The scope parameter of the exchange (default: every granted policy).
  --audience A        The audience parameter of the exchange (default: tokens.audience).
  --resource URL      The resource parameter of the exchange (RFC 8707; needs the apis block), e.g.
                      https://gateway.example.com/orders/.
  --format text|json  Output format (default: text).

Exit status: 0 granted; 1 denied, or the configuration is invalid; 2 usage error or unreadable input.`;

/** A command-line or input-file mistake: reported, exit status 2. */
export class InputError extends Error {}

/** Reads a file for the CLI; a failure is the caller's input mistake, said with the file's name. */
export async function readInputFile(path: string, what: string): Promise<string> {
  try {
    return path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read the ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Formats problems as check-config does: the source, then one `path: message` line each. */
export function formatProblems(source: string, what: string, problems: readonly ConfigProblem[]): string {
  return `${source}: invalid ${what}\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`;
}

/** Parses a YAML input file (duplicate keys and syntax errors refused, with line numbers). */
export function parseYamlInput(text: string, source: string, what: string): unknown {
  try {
    return parseConfigText(text, source);
  } catch (error) {
    if (error instanceof ConfigError) throw new InputError(formatProblems(source, what, error.problems));
    throw error;
  }
}

/** The configuration and its compiled rules, or undefined after printing why not (exit status 1). */
export async function loadRules(path: string, env: ConfigEnvironment): Promise<{ config: BrokerConfig; rules: CompiledRules } | undefined> {
  try {
    const config = await loadConfigFile(path, env);
    return { config, rules: compileRules(config.rules) };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return undefined;
  }
}

function scopeOf(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const scope = value.split(' ').filter((s) => s !== '');
  if (scope.length === 0) throw new InputError('--scope is empty');
  return scope;
}

interface ExplainOptions {
  readonly configPath: string;
  readonly input: { readonly kind: 'token' | 'identity'; readonly path: string };
  readonly scope: string[] | undefined;
  readonly audience: string | undefined;
  readonly resource: ResourceIndicator | undefined;
  readonly format: 'text' | 'json';
}

/** The --resource value, parsed as POST /token parses the parameter; a malformed one is a usage error. */
function resourceOf(value: string | undefined): ResourceIndicator | undefined {
  if (value === undefined) return undefined;
  try {
    return parseResourceIndicator(value);
  } catch (error) {
    if (error instanceof BrokerError) throw new InputError(`--resource: ${error.description} (${error.code})`);
    throw error;
  }
}

function parseOptions(args: readonly string[]): ExplainOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        token: { type: 'string' },
        identity: { type: 'string' },
        scope: { type: 'string' },
        audience: { type: 'string' },
        resource: { type: 'string' },
        format: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new InputError(error instanceof Error ? error.message : String(error));
  }
  if (values.config === undefined) throw new InputError('--config is required');
  if ((values.token === undefined) === (values.identity === undefined)) throw new InputError('give exactly one of --token and --identity');
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new InputError(`--format must be text or json, got "${format}"`);
  if (values.audience === '') throw new InputError('--audience is empty');
  return {
    configPath: values.config,
    input: values.token !== undefined ? { kind: 'token', path: values.token } : { kind: 'identity', path: values.identity ?? '' },
    scope: scopeOf(values.scope),
    audience: values.audience,
    resource: resourceOf(values.resource),
    format,
  };
}

function refusal(verification: ExplanationVerification, resolution: { error: BrokerError; notes: readonly string[] }): RefusalExplanation {
  return { verification, outcome: deniedOutcome(resolution.error), notes: resolution.notes };
}

/**
 * `token-broker explain`: the explanation of one workload's decision, computed offline from the configuration.
 * Exit 0 when the workload would get a token, 1 when it would be refused (or the configuration is invalid), 2 on
 * a usage error or an unreadable input.
 */
export async function explain(args: readonly string[], env: ConfigEnvironment): Promise<number> {
  let options: ExplainOptions;
  try {
    options = parseOptions(args);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    console.error(`token-broker explain: ${error.message}\n\n${EXPLAIN_USAGE}`);
    return 2;
  }
  try {
    // Inputs are read and checked before the configuration: a typo in them is a usage error whatever the
    // configuration says.
    const { input } = options;
    const text = await readInputFile(input.path, input.kind === 'token' ? 'token file' : 'identity fixture');
    const fixture = input.kind === 'identity' ? parseIdentityFixture(parseYamlInput(text, input.path, 'identity fixture')) : undefined;
    if (fixture !== undefined && !fixture.ok) throw new InputError(formatProblems(input.path, 'identity fixture', fixture.problems));

    const loaded = await loadRules(options.configPath, env);
    if (loaded === undefined) return 1;
    const { config, rules } = loaded;
    const nowSeconds = Math.floor(Date.now() / 1000);

    const verification: ExplanationVerification = fixture !== undefined ? 'identity fixture' : 'unverified: decoded offline';
    const resolution = fixture?.ok ? resolveIdentityFixture(fixture.fixture, config, rules) : identityFromUnverifiedToken(text, config, nowSeconds);
    if (resolution.kind === 'problems') throw new InputError(formatProblems(input.path, 'identity fixture', resolution.problems));
    const result: Explanation | RefusalExplanation =
      resolution.kind === 'refused'
        ? refusal(verification, resolution)
        : explainDecision({ config, rules, identity: resolution.identity, scope: options.scope, audience: options.audience, resource: options.resource, nowSeconds, verification, notes: resolution.notes });
    // JSON is often piped on: the warning also goes where a human still sees it.
    if (input.kind === 'token' && options.format === 'json') console.error(`token-broker explain: ${UNVERIFIED_NOTE}`);
    // Only with a policies block: without one the output stays what it was.
    const routes = result.outcome.decision === 'granted' && config.policies !== undefined ? renderOpenedRoutes(openedRoutes(result.outcome.policies, config.policies)) : [];
    console.log(options.format === 'json' ? JSON.stringify(result, null, 2) : renderExplanation(result, routes));
    return result.outcome.decision === 'granted' ? 0 : 1;
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    console.error(`token-broker explain: ${error.message}`);
    return 2;
  }
}
