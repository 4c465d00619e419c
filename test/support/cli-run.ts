import { mock } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ENVIRONMENT_VARIABLES } from '../../src/server/config/environment.js';
import { sinkChildOutput } from './log-capture.js';

/*
 * `token-broker` as a user runs it: a child process started from the repository root through tsx, as the package
 * would run, with an environment that holds nothing the CLI reads unless the test says so. Also the same command
 * in this process with its console captured, for the many argument cases where a process per case only adds
 * seconds.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Resolved here so that a child started in another directory still finds the TypeScript loader.
const TSX = import.meta.resolve('tsx');
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** What a finished run printed and how it exited (`code` null when killed by a signal). */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running CLI: its output so far, and its exit once every stream has closed. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<CliExit>;
}

export interface CliOptions {
  /** Defaults to `cliEnv()`. */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const running = new Set<CliProcess>();

/**
 * The environment of the test run minus every variable the CLI reads (src/server/config/environment.ts) plus `extra`,
 * so each test states what it sets. NODE_TEST_CONTEXT goes too: the child must not think it is a test worker.
 */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const { name } of ENVIRONMENT_VARIABLES) delete env[name];
  delete env.NODE_TEST_CONTEXT;
  return { ...env, ...extra };
}

/** Starts `token-broker ...args`; `killAllCli` ends it if the test does not. */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  sinkChildOutput(child); // the whole-suite log-leak check reads what the CLI printed
  // 'close', not 'exit': by then stdout and stderr hold everything the process wrote.
  const exited = new Promise<CliExit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const cli: CliProcess = { child, stdout: () => out, stderr: () => err, exited };
  running.add(cli);
  void exited.then(() => running.delete(cli));
  return cli;
}

/** Runs `token-broker ...args` to its exit; a run still going after `timeoutMs` is killed and the test fails. */
export async function runCli(args: readonly string[], options: CliOptions & { readonly timeoutMs?: number } = {}): Promise<CliRun> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const cli = startCli(args, options);
  try {
    const { code } = await within(timeoutMs, `token-broker ${args.join(' ')} to exit`, cli.exited);
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  } catch (error) {
    cli.child.kill('SIGKILL');
    throw error;
  }
}

/** Kills every CLI process still running; for `after` hooks, so a failed test leaves nothing behind. */
export async function killAllCli(): Promise<void> {
  await Promise.all(
    [...running].map(async (cli) => {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }),
  );
}

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs a sub-command's function in this process with console.log and console.error captured, as the process
 * would print them. Not concurrent-safe (the console is shared), so such tests run one after another.
 */
export async function captureConsole(command: () => Promise<number>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const log = mock.method(console, 'log', (...parts: unknown[]) => (stdout += `${parts.join(' ')}\n`));
  const error = mock.method(console, 'error', (...parts: unknown[]) => (stderr += `${parts.join(' ')}\n`));
  try {
    const code = await command();
    return { code, stdout, stderr };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}
