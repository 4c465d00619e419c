#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serve } from './cli/serve.js';
import { checkConfig } from './cli/check-config.js';

const USAGE = `Usage: token-broker <command> [options]

Commands:
  serve [--config FILE]   Run the broker until SIGTERM or SIGINT, then finish in-flight requests and exit 0.
                          Without --config or BROKER_CONFIG it runs in dev mode on 127.0.0.1: an embedded
                          stand-in cluster issuer and an ephemeral signing key (refused with NODE_ENV=production).
  check-config FILE       Validate a configuration file (with PORT and REDIS_URL) as serve does at start-up,
                          without reading keys or contacting issuers. Prints OK, or every problem with its path.
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
