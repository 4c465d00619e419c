/**
 * `npm test`: type-check, run every test/**\/*.test.ts with the log sink on, then check the captured logs for
 * leaked tokens (test/hygiene/log-leaks.final.ts). Exits non-zero when any stage fails.
 *
 * The suite's own output goes straight to the terminal (colours, progress and the runner's closing summary as
 * before); a TAP copy of each run is written next to the captured logs so this script can close with the
 * combined counts. Run one file on its own with `node --import tsx --test <file>` (the sink is then off).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_SINK_ENV } from '../test/support/log-capture.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FINAL_CHECK = 'test/hygiene/log-leaks.final.ts';
/** The counters node's test runner prints last, in its order. */
const SUMMARY_KEYS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo', 'duration_ms'] as const;
type Summary = Record<(typeof SUMMARY_KEYS)[number], number>;

/** Runs a command from the repository root with the terminal attached; resolves with its exit code. */
function run(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'inherit' });
    child.once('error', (error) => {
      console.error(`run-tests: cannot start ${args.join(' ')}: ${error.message}`);
      resolve(1);
    });
    // A stage killed by a signal failed too.
    child.once('exit', (code, signal) => resolve(code ?? (signal !== null ? 1 : 0)));
  });
}

/** Every test file, as `find test -name "*.test.ts" | sort` listed them, with forward slashes. */
function testFiles(): string[] {
  return readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .map((path) => `test/${path.split('\\').join('/')}`)
    .filter((path) => path.endsWith('.test.ts'))
    .sort();
}

/** The closing `# tests N` ... lines of a TAP file, or undefined when the run never got to write them. */
function summaryOf(tapFile: string): Summary | undefined {
  if (!existsSync(tapFile)) return undefined;
  const found = new Map<string, number>();
  for (const line of readFileSync(tapFile, 'utf8').split('\n')) {
    const match = /^# (\w+) (\d+(?:\.\d+)?)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) found.set(match[1], Number(match[2]));
  }
  const summary = {} as Summary;
  for (const key of SUMMARY_KEYS) {
    const value = found.get(key);
    if (value === undefined) return undefined;
    summary[key] = value;
  }
  return summary;
}

/** node --test with the spec reporter on the terminal and a TAP copy in `tapFile`. */
function testArgs(tapFile: string, files: readonly string[], concurrency: number): string[] {
  return [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    `--test-concurrency=${concurrency}`,
    // A test that hangs (a server left open, a promise never settled) fails after 3 minutes instead of holding
    // the whole run (and CI) until its own limit.
    '--test-timeout=180000',
    ...files,
  ];
}

async function main(): Promise<number> {
  if (process.argv.length > 2) {
    console.error('run-tests: npm test takes no arguments; run single files with node --import tsx --test <file>');
    return 2;
  }

  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const typecheck = await run([tsc, '-p', 'tsconfig.json', '--noEmit']);
  if (typecheck !== 0) {
    console.error('run-tests: type check failed; tests not run');
    return typecheck;
  }

  const runDir = mkdtempSync(join(tmpdir(), 'tb-test-run-'));
  const sinkDir = join(runDir, 'logs');
  mkdirSync(sinkDir);
  const env = { ...process.env, [LOG_SINK_ENV]: sinkDir };

  const suiteTap = join(runDir, 'suite.tap');
  const suite = await run(testArgs(suiteTap, testFiles(), 2), env);
  // Checked even after a failed suite: a leak is worth knowing about either way, and the check is quick.
  const finalTap = join(runDir, 'log-leaks.tap');
  const leaks = await run(testArgs(finalTap, [FINAL_CHECK], 1), env);

  const summaries = [summaryOf(suiteTap), summaryOf(finalTap)];
  const failed = suite !== 0 || leaks !== 0;
  const status = (code: number) => (code === 0 ? 'ok' : `FAILED (exit ${code})`);
  console.log(`\nnpm test: type check ok, suite ${status(suite)}, log-leak check ${status(leaks)}`);
  if (failed) console.log(`npm test: captured logs and TAP output kept in ${runDir}`);
  else rmSync(runDir, { recursive: true, force: true });
  if (summaries.every((s): s is Summary => s !== undefined)) {
    // The combined counts, in the runner's own format, stay the last lines: what CI and people read.
    for (const key of SUMMARY_KEYS) {
      const total = summaries.reduce((sum, s) => sum + s[key], 0);
      console.log(`ℹ ${key} ${key === 'duration_ms' ? total.toFixed(3) : total}`);
    }
  } else {
    console.log('npm test: a test run ended without its summary (crashed or killed)');
  }

  return failed ? 1 : 0;
}

process.exitCode = await main();
