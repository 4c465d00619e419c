import type { ServeEnvironment } from '../../server/config/environment.js';
import { asksForHelp, COMMANDS, overviewUsage } from './commands.js';

/**
 * `token-broker ARGS`: help and usage on stdout (exit 0), usage errors on stderr (exit 2), otherwise the
 * command's own exit status. What it prints is the CLI's output for a person, not a log line.
 */
export async function runCli(argv: readonly string[], env: ServeEnvironment): Promise<number> {
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
  return command.run(rest, env);
}
