#!/usr/bin/env node
import { asksForHelp, COMMANDS, overviewUsage } from './cli/commands.js';

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    console.log(overviewUsage());
    return 0;
  }
  if (name === undefined) {
    // A missing command is a usage error: the usage goes to stderr, like any other error.
    console.error(overviewUsage());
    return 2;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) {
    console.error(`token-broker: unknown command "${name}"\n\n${overviewUsage()}`);
    return 2;
  }
  if (asksForHelp(rest)) {
    console.log(command.usage);
    return 0;
  }
  return command.run(rest, process.env);
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
