#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serve } from './cli/serve.js';
import { checkConfig } from './cli/check-config.js';

const USAGE = `Usage: token-broker <command>

Commands:
  serve [--config FILE]     Run the broker. Without --config and BROKER_CONFIG: dev mode (embedded issuer, ephemeral key).
  check-config FILE         Validate a configuration file; prints OK or every problem with its field path.
  help                      Show this help.

Environment: BROKER_CONFIG (config file), PORT and REDIS_URL (override the file), NODE_ENV=production (refuses dev mode).`;

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
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
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
