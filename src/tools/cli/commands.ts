import { parseArgs } from 'node:util';
import { ENVIRONMENT_VARIABLES, type ServeEnvironment } from '../../server/config/environment.js';
import { serve, SERVE_USAGE } from './serve.js';
import { checkConfig, CHECK_CONFIG_USAGE } from './check-config.js';
import { tyk, TYK_USAGE } from './tyk.js';
import { keys, KEYS_USAGE } from './keys.js';
import { explain, EXPLAIN_USAGE } from './explain.js';
import { testRules, TEST_RULES_USAGE } from './test-rules.js';
import { doctor, DOCTOR_USAGE } from './doctor.js';
import { lint, LINT_USAGE } from './lint.js';
import { deny, DENY_USAGE } from './deny.js';

/** One sub-command: how `token-broker help` lists it, its own usage (`--help`), and how it runs. */
export interface CliCommand {
  readonly name: string;
  /** The command line after `token-broker`, as the overview shows it. */
  readonly synopsis: string;
  readonly summary: string;
  /** The command's full usage, printed by `token-broker <command> --help`. */
  readonly usage: string;
  run(args: readonly string[], env: ServeEnvironment): Promise<number>;
}

/** Every sub-command, in the order `token-broker help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  {
    name: 'serve',
    synopsis: 'serve [--config FILE]',
    summary:
      'Run the broker until SIGTERM or SIGINT, then finish in-flight requests and exit 0. Without --config or BROKER_CONFIG it runs in dev mode on 127.0.0.1: an embedded stand-in cluster issuer and an ephemeral signing key (refused with NODE_ENV=production).',
    usage: SERVE_USAGE,
    run: (args, env) => {
      const { values } = parseArgs({ args: [...args], options: { config: { type: 'string', short: 'c' } }, strict: true });
      return serve(values.config, env);
    },
  },
  {
    name: 'check-config',
    synopsis: 'check-config FILE',
    summary:
      'Validate a configuration file (with the environment overrides below) as serve does at start-up, without reading keys or contacting issuers. Prints OK, or every problem with its path.',
    usage: CHECK_CONFIG_USAGE,
    run: async (args, env) => {
      const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true });
      if (positionals.length !== 1 || positionals[0] === undefined) {
        console.error(`token-broker check-config: give exactly one FILE\n\n${CHECK_CONFIG_USAGE}`);
        return 2;
      }
      return checkConfig(positionals[0], env);
    },
  },
  {
    name: 'tyk',
    synopsis: 'tyk api|policies ...',
    summary: "Print a Tyk API definition that accepts the broker's tokens, or the Tyk policies the rules can grant. Exit 1 on an invalid configuration.",
    usage: TYK_USAGE,
    run: tyk,
  },
  {
    name: 'keys',
    synopsis: 'keys generate|list ...',
    summary: 'Create a signing key (a PEM file, or a Kubernetes Secret manifest), or list the keys of signing.keysDir with their lifecycle states.',
    usage: KEYS_USAGE,
    run: keys,
  },
  {
    name: 'explain',
    synopsis: 'explain --config FILE (--token FILE | --identity FILE) [--scope S] [--audience A] [--format text|json]',
    summary:
      'Explain offline what /token would decide for a workload: every rule, the policies, the claims or the refusal. --token is decoded WITHOUT verification; its time is checked as /token checks it. Exit 1 when denied.',
    usage: EXPLAIN_USAGE,
    run: explain,
  },
  {
    name: 'test-rules',
    synopsis: 'test-rules --config FILE CASES.yaml',
    summary: 'Check the rules against expected policies or denials; one PASS/FAIL line per case. Exit 1 when a case fails.',
    usage: TEST_RULES_USAGE,
    run: testRules,
  },
  {
    name: 'doctor',
    synopsis: 'doctor --config FILE [--tyk-url URL --tyk-secret-file FILE] [--api-id ID]',
    summary:
      "Check the chain: issuers, clocks, signing keys, the broker's JWKS and Tyk's policies and API definitions; one OK/WARN/FAIL line per check. Exit 1 on FAIL.",
    usage: DOCTOR_USAGE,
    run: doctor,
  },
  {
    name: 'deny',
    synopsis: 'deny add|list|remove --config FILE ...',
    summary:
      'The kill switch: refuse tokens to an issuer, namespace, service account, workflow or one issued token (jti), on every replica within a second, through the Redis of the configuration. Exit 1 when Redis is unreachable or the deny is not found.',
    usage: DENY_USAGE,
    run: deny,
  },
  {
    name: 'lint',
    synopsis: 'lint [PATH...] [--format text|json|sarif] [--audience AUD] [--broker-url URL] [--fail-on error|warning|note] [--suggest]',
    summary:
      'Check Argo workflow manifests for static credentials and broker calls that would fail; one finding per line with file:line:column, rule id and fix.',
    usage: LINT_USAGE,
    // lint reads no environment; its second parameter is the output streams tests give.
    run: (args) => lint(args),
  },
];

/** Whether the arguments ask for a command's usage: `--help` or `-h` anywhere, or `help` as the first word. */
export function asksForHelp(args: readonly string[]): boolean {
  return args[0] === 'help' || args.some((arg) => arg === '--help' || arg === '-h');
}

const INDENT = ' '.repeat(26);

/** Wraps text to lines of at most `width` characters, each prefixed by `indent`. */
function wrap(text: string, indent: string, width = 118): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/** `token-broker help`: every command and every environment variable, from the two tables. */
export function overviewUsage(): string {
  const commands = COMMANDS.flatMap((command) => {
    const head = `  ${command.synopsis}`;
    const summary = wrap(command.summary, INDENT);
    // A short synopsis shares its line with the summary; a long one stands on its own line.
    if (head.length < INDENT.length - 1 && summary[0] !== undefined) return [`${head.padEnd(INDENT.length)}${summary[0].trimStart()}`, ...summary.slice(1)];
    return [head, ...summary];
  });
  const nameWidth = Math.max(...ENVIRONMENT_VARIABLES.map((variable) => variable.name.length)) + 2;
  const environment = ENVIRONMENT_VARIABLES.map((variable) => `  ${variable.name.padEnd(nameWidth)}${variable.description}`);
  return [
    'Usage: token-broker <command> [options]',
    '',
    'Commands:',
    ...commands,
    `${'  help'.padEnd(INDENT.length)}Show this help. token-broker <command> --help shows a command's usage.`,
    '',
    'Environment:',
    ...environment,
    '',
    'Exit status: 0 success; 1 the check or decision failed (each command says which); 2 usage error, or serve could not start.',
  ].join('\n');
}
