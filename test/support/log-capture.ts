import { closeSync, openSync, writeSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { ChildProcess } from 'node:child_process';
import { pino, type Logger } from 'pino';

/** A pino logger whose JSON lines are kept in memory, so tests can assert on logs and audit records. */
export interface LogCapture {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
  /** The raw text of every line, for leak checks. */
  readonly raw: string[];
}

export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text === '') continue;
        raw.push(text);
        appendToLogSink('logger', text);
        lines.push(JSON.parse(text) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, raw };
}

// --- log sink (whole-suite leak check) -------------------------------------------------------------------
// `npm test` (scripts/run-tests.ts) sets TB_TEST_LOG_SINK to a directory; every line a test's logger or a
// spawned CLI writes is appended there, one file per test process and channel, and
// test/hygiene/log-leaks.final.ts then checks all of them for tokens. Unset (a single file run by hand), this is off.

/** The environment variable naming the sink directory. */
export const LOG_SINK_ENV = 'TB_TEST_LOG_SINK';

/** Where a line came from: an in-process logger, or the stdout/stderr of a CLI child process. */
export type LogSinkChannel = 'logger' | 'child';

const sinkFiles = new Map<LogSinkChannel, number>();

/** The file of this process and channel, named after the test file so a finding points at its source. */
function sinkFd(channel: LogSinkChannel): number | undefined {
  const dir = process.env[LOG_SINK_ENV];
  if (dir === undefined || dir === '') return undefined;
  let fd = sinkFiles.get(channel);
  if (fd === undefined) {
    const script = process.argv[1] ?? 'unknown';
    const source = relative(process.cwd(), script).replace(/[^A-Za-z0-9._-]+/g, '_') || basename(script);
    // Synchronous appends: a worker that exits (or is killed by a failing test) has already written every line.
    fd = openSync(join(dir, `${source}.${process.pid}.${channel}.log`), 'a');
    sinkFiles.set(channel, fd);
    const opened = fd;
    process.once('exit', () => closeSync(opened));
  }
  return fd;
}

/** Appends one raw log line to the sink, when the suite runs with one. */
export function appendToLogSink(channel: LogSinkChannel, line: string): void {
  const fd = sinkFd(channel);
  if (fd !== undefined) writeSync(fd, `${line}\n`);
}

/**
 * Copies every line a spawned CLI writes to stdout or stderr into the sink. It only listens: the spawn helper's
 * own listeners and encoding are unchanged (a StringDecoder handles both Buffer and string chunks).
 */
export function sinkChildOutput(child: ChildProcess): void {
  if (process.env[LOG_SINK_ENV] === undefined) return;
  for (const stream of [child.stdout, child.stderr]) {
    if (stream !== null) sinkLines(stream);
  }
}

function sinkLines(stream: Readable): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  const take = (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) appendToLogSink('child', line);
  };
  stream.on('data', (chunk: Buffer | string) => take(typeof chunk === 'string' ? chunk : decoder.write(chunk)));
  stream.on('end', () => {
    take(decoder.end());
    if (pending !== '') appendToLogSink('child', pending);
    pending = '';
  });
}
