import { Writable } from 'node:stream';
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
        lines.push(JSON.parse(text) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, raw };
}
