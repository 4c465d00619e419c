import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createTurnBatchedDestination } from '../../src/server/observability/log-destination.js';

/*
 * The broker's log destination (src/server/observability/log-destination.ts): the lines of one event-loop turn go
 * out in one write, in the order they were logged, before the loop waits for I/O again; nothing is lost when the
 * process exits, normally or by an uncaught exception, and a large turn's lines arrive whole through a pipe.
 */

const DESTINATION = fileURLToPath(new URL('../../src/server/observability/log-destination.ts', import.meta.url));
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function capture() {
  const writes: { fd: number; data: string }[] = [];
  return { writes, write: (fd: number, data: string) => (writes.push({ fd, data }), data.length) };
}

/** Runs `body` in a child process with the destination on its stdout; resolves with its stdout and exit code. */
function runChild(body: string): Promise<{ stdout: string; code: number | null }> {
  const script = `import { createTurnBatchedDestination } from ${JSON.stringify(DESTINATION)};\nconst out = createTurnBatchedDestination(1);\n${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, code }));
  });
}

describe('turn-batched log destination', () => {
  it('the lines of one turn: nothing written while the turn runs, then one write of all of them, in order', async () => {
    const sink = capture();
    const destination = createTurnBatchedDestination(7, sink.write);
    destination.write('one\n');
    destination.write('two\n');
    destination.write('three\n');
    assert.equal(sink.writes.length, 0, 'held until the turn ends');
    await nextTurn();
    assert.deepEqual(sink.writes, [{ fd: 7, data: 'one\ntwo\nthree\n' }]);
    destination.write('four\n');
    await nextTurn();
    assert.deepEqual(sink.writes.at(-1), { fd: 7, data: 'four\n' });
    assert.equal(sink.writes.length, 2);
  });

  it('flushSync and pino logger.flush write what is held at once', async () => {
    const sink = capture();
    const destination = createTurnBatchedDestination(1, sink.write);
    const logger = pino({ base: undefined, timestamp: false }, destination);
    logger.info({ jti: 'a' }, 'first');
    destination.flushSync();
    assert.equal(sink.writes.length, 1);
    assert.deepEqual(JSON.parse(sink.writes[0]?.data ?? ''), { level: 30, jti: 'a', msg: 'first' });
    logger.info('second');
    await new Promise<void>((resolve, reject) => logger.flush((error) => (error ? reject(error) : resolve())));
    assert.equal(sink.writes.length, 2);
    assert.match(sink.writes[1]?.data ?? '', /"msg":"second"/);
    await nextTurn();
    assert.equal(sink.writes.length, 2, 'nothing written twice');
  });

  it('a process that exits in the turn it logged in still writes its lines', async () => {
    const { stdout, code } = await runChild(`out.write('audit line\\n'); process.exit(0);`);
    assert.equal(code, 0);
    assert.equal(stdout, 'audit line\n');
  });

  it('an uncaught exception does not lose the lines logged before it', async () => {
    const { stdout, code } = await runChild(`out.write('before the crash\\n'); throw new Error('boom');`);
    assert.equal(code, 1);
    assert.equal(stdout, 'before the crash\n');
  });

  it('a turn of several megabytes arrives whole through a pipe, in order', async () => {
    const { stdout, code } = await runChild(`for (let i = 0; i < 40000; i++) out.write(String(i).padStart(100, '.') + '\\n');`);
    assert.equal(code, 0);
    const lines = stdout.split('\n');
    assert.equal(lines.length, 40001);
    assert.equal(lines[0], '0'.padStart(100, '.'));
    assert.equal(lines[39999], '39999'.padStart(100, '.'));
  });
});
