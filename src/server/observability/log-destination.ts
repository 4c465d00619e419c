import { writeSync } from 'node:fs';

/** What pino writes log lines to: a stream-like object with `write`, and `flushSync` for pino's `final`. */
export interface LogDestination {
  write(line: string): boolean;
  /** Writes every line held now, synchronously. */
  flushSync(): void;
  /** pino's `logger.flush(cb)`: the same, then `done`. */
  flush(done: (error?: Error) => void): void;
}

/**
 * Log lines written to a file descriptor (stdout) once per event-loop turn: the lines of every request answered in
 * a turn go out in one `write`, made on the event loop in the turn's check phase (setImmediate), before the loop
 * waits for I/O again. A system call per line cost more than building the line on the bench VM (bench/README.md,
 * issue 18), and pino's default destination hands each write to libuv's thread pool, which costs a hand-off and a
 * wake-up per write; here there is neither. A line waits at most for the rest of the turn it was logged in, and the
 * process's `exit` (a normal exit, or an uncaught exception) writes what is still held.
 *
 * A stdout that stops draining (a blocking pipe whose reader stalls) holds the broker in `writeSync` rather than
 * letting held lines grow without bound.
 */
export function createTurnBatchedDestination(fd: number, write: (fd: number, data: string) => number = writeSyncAll): LogDestination {
  let held: string[] = [];
  let scheduled = false;

  function flushSync(): void {
    scheduled = false;
    if (held.length === 0) return;
    const data = held.length === 1 ? (held[0] ?? '') : held.join('');
    held = [];
    write(fd, data);
  }

  process.on('exit', flushSync);
  return {
    write(line) {
      held.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushSync);
      }
      return true;
    },
    flushSync,
    flush(done) {
      try {
        flushSync();
        done();
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
      }
    },
  };
}

const EAGAIN_WAIT_MS = 1;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * writeSync until every byte is out: a pipe may take a large write in parts, and a non-blocking one answers EAGAIN
 * while full (then this waits a millisecond and tries again, as pino's own synchronous destination does).
 */
export function writeSyncAll(fd: number, data: string): number {
  let buffer = Buffer.from(data, 'utf8');
  const total = buffer.length;
  while (buffer.length > 0) {
    try {
      buffer = buffer.subarray(writeSync(fd, buffer));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, EAGAIN_WAIT_MS);
    }
  }
  return total;
}
