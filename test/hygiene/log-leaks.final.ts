import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LOG_SINK_ENV } from '../support/log-capture.js';
import { describeFinding, findLeaks } from './log-leak-patterns.js';

// The final stage of `npm test` (scripts/run-tests.ts), after the whole suite has run with TB_TEST_LOG_SINK set:
// every line any test's logger or spawned CLI wrote is in that directory, and none may hold a token or a Tyk key.
// Not named *.test.ts, so the main run does not pick it up before the logs exist.

/** Far below what the suite writes (thousands of lines), far above what a broken capture would leave. */
const MIN_LOGGER_LINES = 500;
const MIN_CHILD_LINES = 20;

interface SinkLine {
  readonly file: string;
  readonly lineNumber: number;
  readonly text: string;
}

function readSink(dir: string): { logger: SinkLine[]; child: SinkLine[] } {
  const logger: SinkLine[] = [];
  const child: SinkLine[] = [];
  for (const file of readdirSync(dir).sort()) {
    const channel = /\.(logger|child)\.log$/.exec(file)?.[1];
    if (channel === undefined) continue;
    const target = channel === 'logger' ? logger : child;
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    lines.forEach((text, index) => {
      if (text !== '') target.push({ file, lineNumber: index + 1, text });
    });
  }
  return { logger, child };
}

/** Whether some JSON log line has this `msg` (and, when given, these fields). */
function hasMessage(lines: readonly SinkLine[], msg: string, fields: Record<string, unknown> = {}): boolean {
  return lines.some(({ text }) => {
    if (!text.startsWith('{') || !text.includes(msg)) return false;
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      return parsed.msg === msg && Object.entries(fields).every(([key, value]) => parsed[key] === value);
    } catch {
      return false;
    }
  });
}

describe('the logs of the whole test suite', () => {
  let logger: SinkLine[] = [];
  let child: SinkLine[] = [];

  before(() => {
    const dir = process.env[LOG_SINK_ENV];
    assert.ok(dir !== undefined && dir !== '', `${LOG_SINK_ENV} is not set: run this check through npm test (scripts/run-tests.ts)`);
    ({ logger, child } = readSink(dir));
  });

  it('were captured from in-process loggers, including exchanges and audit records', () => {
    assert.ok(logger.length >= MIN_LOGGER_LINES, `only ${logger.length} logger lines captured; expected at least ${MIN_LOGGER_LINES}`);
    assert.equal(hasMessage(logger, 'exchange succeeded', { outcome: 'issued' }), true, 'no "exchange succeeded" line from a test broker');
    assert.equal(hasMessage(logger, 'exchange rejected'), true, 'no "exchange rejected" line from a test broker');
    assert.equal(hasMessage(logger, 'token issued', { audit: true }), true, 'no audit record from a test broker');
  });

  it('were captured from spawned CLI processes, including a served exchange', () => {
    assert.ok(child.length >= MIN_CHILD_LINES, `only ${child.length} CLI output lines captured; expected at least ${MIN_CHILD_LINES}`);
    assert.equal(hasMessage(child, 'exchange succeeded', { service: 'token-broker' }), true, 'no "exchange succeeded" line from a spawned token-broker serve');
  });

  it('contain no JWT and no Tyk key', () => {
    // pino stamps every line with the machine's host name; a container's may be a long hex id, which is not a key.
    const hostField = `"hostname":${JSON.stringify(hostname())}`;
    const findings: string[] = [];
    for (const line of [...logger, ...child]) {
      const text = line.text.replaceAll(hostField, '"hostname":""');
      for (const finding of findLeaks(text)) findings.push(`${line.file}:${line.lineNumber}: ${describeFinding(text, finding)}`);
    }
    // The findings name file and line, never the credential: the sink directory is kept on failure for a look.
    assert.equal(findings.length, 0, `${findings.length} credential-shaped strings in the captured logs:\n${findings.slice(0, 25).join('\n')}`);
  });
});
