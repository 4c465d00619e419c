#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serve } from './cli/serve.js';
import { checkConfig } from './cli/check-config.js';
import { tyk } from './cli/tyk.js';
import { keys } from './cli/keys.js';
import { explain } from './cli/explain.js';
import { testRules } from './cli/test-rules.js';
import { doctor } from './cli/doctor.js';
import { lint } from './cli/lint.js';

const USAGE = `Usage: token-broker <command> [options]

Commands:
  serve [--config FILE]   Run the broker until SIGTERM or SIGINT, then finish in-flight requests and exit 0.
                          Without --config or BROKER_CONFIG it runs in dev mode on 127.0.0.1: an embedded
                          stand-in cluster issuer and an ephemeral signing key (refused with NODE_ENV=production).
  check-config FILE       Validate a configuration file (with PORT and REDIS_URL) as serve does at start-up,
                          without reading keys or contacting issuers. Prints OK, or every problem with its path.
  tyk api|policies ...    Print a Tyk API definition that accepts the broker's tokens, or the Tyk policies the
                          rules can grant (token-broker tyk help). Exit 1 on an invalid configuration.
  keys generate|list ...  Create a signing key (a PEM file, or a Kubernetes Secret manifest), or list the keys of
                          signing.keysDir with their lifecycle states (token-broker keys help).
  explain --config FILE (--token FILE | --identity FILE) [--scope S] [--audience A] [--format text|json]
                          Explain offline what /token would decide for a workload: every rule, the policies, the
                          claims or the refusal. --token is decoded WITHOUT verification. Exit 1 when denied.
  test-rules --config FILE CASES.yaml
                          Check the rules against expected policies or denials; one PASS/FAIL line per case.
                          Exit 1 when a case fails.
  doctor --config FILE [--tyk-url URL --tyk-secret-file FILE] [--api-id ID]
                          Check the chain: issuers, clocks, signing keys, the broker's JWKS and Tyk's policies and
                          API definitions; one OK/WARN/FAIL line per check (token-broker doctor help). Exit 1 on FAIL.
  lint [PATH...] [--format text|json|sarif] [--audience AUD] [--broker-url URL] [--fail-on error|warning|note] [--suggest]
                          Check Argo workflow manifests for static credentials and broker calls that would fail; one
                          finding per line with file:line:column, rule id and fix (token-broker lint --help).
  help                    Show this help.

Environment:
  BROKER_CONFIG   configuration file for serve when --config is not given
  PORT            overrides server.port
  REDIS_URL       reserved for the Redis token cache (refused in this version)
  NODE_ENV        "production" refuses dev mode

Exit status: 0 success; 1 check-config found problems; 2 usage error, or serve could not start.`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string', short: 'c' } }, strict: true });
      return serve(values.config, process.env);
    }
    case 'check-config': {
      const { positionals } = parseArgs({ args: [...rest], allowPositionals: true, strict: true });
      if (positionals.length !== 1 || positionals[0] === undefined) {
        console.error('Usage: token-broker check-config FILE');
        return 2;
      }
      return checkConfig(positionals[0], process.env);
    }
    case 'tyk':
      return tyk(rest);
    case 'keys':
      return keys(rest, process.env);
    case 'explain':
      return explain(rest, process.env);
    case 'test-rules':
      return testRules(rest, process.env);
    case 'doctor':
      return doctor(rest, process.env);
    case 'lint':
      return lint(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    case undefined:
      // A missing command is a usage error: the usage goes to stderr, like any other error.
      console.error(USAGE);
      return 2;
    default:
      console.error(`token-broker: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`token-broker: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  },
);
