import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeRecord } from '../../src/server/observability/exchange-record.js';
import { BrokerError } from '../../src/server/errors.js';
import { MAX_BODY_BYTES } from '../../src/server/http/form-body.js';
import { tokenSha256 } from '../../src/server/issuers/verify-subject-token.js';
import { useHarness } from '../support/broker-harness.js';
import type { ExchangeOutcome } from '../../src/server/observability/exchange-outcome.js';
import { PAYMENTS_RUNNER } from '../support/workload-identities.js';

const IDENTITY = PAYMENTS_RUNNER;

function recorded(): { record: ExchangeRecord; outcomes: ExchangeOutcome[] } {
  const outcomes: ExchangeOutcome[] = [];
  return { record: new ExchangeRecord('req-1', (outcome) => outcomes.push(outcome)), outcomes };
}

describe('ExchangeRecord', () => {
  it('ends exactly once: a second end (success after failure, or the reverse) emits nothing', () => {
    const { record, outcomes } = recorded();
    record.failed(new BrokerError('expired', { oauthError: 'invalid_grant', status: 400, description: 'expired' }));
    record.succeeded({ accessToken: 'a.b.c', cached: false, policies: ['p'], jti: 'j', expiresAt: 1, expiresIn: 1 });
    assert.equal(outcomes.length, 1);
    assert.deepEqual([outcomes[0]?.outcome, outcomes[0]?.reason], ['rejected', 'expired']);
  });

  it('a refusal carries what was established before it; a bug is an error with reason internal_error', () => {
    const { record, outcomes } = recorded();
    record.presented('x.y.z');
    record.identified(IDENTITY);
    record.failed(new TypeError('bug'));
    const [outcome] = outcomes;
    assert.deepEqual(
      [outcome?.outcome, outcome?.reason, outcome?.namespace, outcome?.serviceAccount, outcome?.subjectTokenSha256],
      ['error', 'internal_error', 'payments', 'argo-runner', tokenSha256('x.y.z')],
    );
  });

  it('names an issued token by its SHA-256 for the audit record, and a cached answer by nothing', () => {
    const issued = recorded();
    issued.record.succeeded({ accessToken: 'minted', cached: false, policies: ['p'], jti: 'j1', expiresAt: 100, expiresIn: 60 });
    assert.deepEqual([issued.outcomes[0]?.outcome, issued.outcomes[0]?.accessTokenSha256], ['issued', tokenSha256('minted')]);
    const cached = recorded();
    cached.record.succeeded({ accessToken: 'minted', cached: true, policies: ['p'], jti: 'j1', expiresAt: 100, expiresIn: 30 });
    assert.deepEqual([cached.outcomes[0]?.outcome, cached.outcomes[0]?.accessTokenSha256], ['cached', undefined]);
  });
});

describe('POST /token refused before the exchange is recorded like any other', () => {
  const h = useHarness();

  it('an oversized body: one exchange log line with its reason and the time reading it took, not 0', async () => {
    // Refused only once more than MAX_BODY_BYTES has streamed in: the record started before the first byte.
    const res = await h.http.post('/token').type('form').send(`subject_token=${'a'.repeat(MAX_BODY_BYTES + 1)}`);
    assert.equal(res.status, 413);
    const lines = h.logs.lines.filter((line) => line.requestId === res.headers['x-request-id']);
    const exchange = lines.find((line) => line.reason === res.body.reason);
    assert.ok(exchange !== undefined, JSON.stringify(lines));
    assert.equal(exchange.outcome, 'rejected');
    assert.ok(typeof exchange.durationMs === 'number' && exchange.durationMs > 0, `durationMs ${String(exchange.durationMs)}`);
  });
});
