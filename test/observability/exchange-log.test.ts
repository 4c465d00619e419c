import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { exchangeLogger, logExchange } from '../../src/server/observability/exchange-log.js';
import { REDACT_PATHS, REDACTION_CENSOR } from '../../src/server/observability/log-redaction.js';
import type { ExchangeOutcome } from '../../src/server/observability/exchange-outcome.js';

/*
 * Exchange and audit lines go through a logger that redacts top-level fields only (the root's wildcard paths cost
 * more per line than the rest of a cached exchange). That is safe because the lines are built field by field from
 * a fixed list: these tests pin that list, and the redaction that remains.
 */

function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const root = pino({ level: 'info', redact: { paths: [...REDACT_PATHS], censor: REDACTION_CENSOR } }, stream);
  return {
    logger: exchangeLogger(root),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const ISSUED: ExchangeOutcome = {
  requestId: 'req-1',
  outcome: 'issued',
  reason: 'ok',
  durationMs: 1.234,
  subjectTokenSha256: 'c3ViamVjdA',
  issuerName: 'cluster-a',
  namespace: 'payments',
  serviceAccount: 'argo-runner',
  podName: 'wf-1-step',
  workflow: 'wf-1',
  node: 'wf-1-step',
  subject: 'system:serviceaccount:payments:argo-runner',
  policies: ['payments-read'],
  matchedRules: ['payments'],
  jti: 'jti-1',
  expiresAt: 1_800_000_000,
  ttlSeconds: 300,
  accessTokenSha256: 'YWNjZXNz',
  cacheResult: 'miss',
};

const EXCHANGE_FIELDS = [
  'requestId', 'outcome', 'reason', 'issuer', 'namespace', 'serviceAccount', 'pod', 'workflow', 'node', 'policies', 'jti',
  'expiresAt', 'durationMs', 'subjectTokenSha256', 'facts', 'detail', 'verdicts',
];
const AUDIT_FIELDS = [
  'audit', 'event', 'requestId', 'jti', 'subject', 'issuer', 'namespace', 'serviceAccount', 'pod', 'workflow', 'node', 'policies',
  'matchedRules', 'expiresAt', 'accessTokenSha256', 'subjectTokenSha256',
];
const PINO_FIELDS = ['level', 'time', 'pid', 'hostname', 'msg'];

describe('exchange and audit log lines', () => {
  it('carry only their fixed fields: an issued token writes one exchange line and one audit line', () => {
    const { logger, lines } = capture();
    logExchange(logger, ISSUED);
    const [exchange, audit, ...rest] = lines();
    assert.equal(rest.length, 0);
    assert.equal(exchange?.msg, 'exchange succeeded');
    assert.equal(audit?.msg, 'token issued');
    for (const key of Object.keys(exchange ?? {})) assert.ok([...EXCHANGE_FIELDS, ...PINO_FIELDS].includes(key), `exchange line field ${key}`);
    for (const key of Object.keys(audit ?? {})) assert.ok([...AUDIT_FIELDS, ...PINO_FIELDS].includes(key), `audit line field ${key}`);
    assert.equal(audit?.accessTokenSha256, 'YWNjZXNz');
    assert.equal(exchange?.subjectTokenSha256, 'c3ViamVjdA');
  });

  it('a refusal carries its facts and detail, and nothing else', () => {
    const { logger, lines } = capture();
    logExchange(logger, { requestId: 'req-2', outcome: 'rejected', reason: 'expired', durationMs: 0.5, facts: { expiredSecondsAgo: 30 }, detail: 'exp in the past' });
    const [line, ...rest] = lines();
    assert.equal(rest.length, 0);
    assert.deepEqual(line?.facts, { expiredSecondsAgo: 30 });
    assert.equal(line?.detail, 'exp in the past');
    for (const key of Object.keys(line ?? {})) assert.ok([...EXCHANGE_FIELDS, ...PINO_FIELDS].includes(key), `field ${key}`);
  });

  it('the exchange logger still censors credential fields at the top of a line', () => {
    const { logger, lines } = capture();
    logger.info({ token: 'eyJ.secret.value', subject_token: 'eyJ.secret.value', access_token: 'eyJ.secret.value', authorization: 'Bearer eyJ.secret.value' }, 'misuse');
    const [line] = lines();
    assert.deepEqual([line?.token, line?.subject_token, line?.access_token, line?.authorization], Array(4).fill(REDACTION_CENSOR));
    assert.doesNotMatch(JSON.stringify(lines()), /secret/);
  });

  it('the root logger keeps its wildcard paths for every other line', () => {
    const chunks: string[] = [];
    const root = pino(
      { level: 'info', redact: { paths: [...REDACT_PATHS], censor: REDACTION_CENSOR } },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk.toString('utf8'));
          done();
        },
      }),
    );
    root.info({ request: { token: 'eyJ.secret.value', authorization: 'Bearer eyJ.secret.value' } }, 'nested');
    const line = JSON.parse(chunks.join('')) as { request: Record<string, unknown> };
    assert.deepEqual(line.request, { token: REDACTION_CENSOR, authorization: REDACTION_CENSOR });
  });
});
