import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { decodeJwt } from 'jose';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { useHarness } from '../support/broker-harness.js';
import type { Explanation } from '../../src/server/explain/explain-decision.js';

/*
 * Explain is the exchange's own decision (src/server/rules/decide-grant.ts), not a second copy of it: for any workload,
 * scope and audience, POST /v1/explain says granted exactly when POST /token issues, with the same policies and
 * the same claims (but the times and jti), and denied with the same reason code and error_description otherwise.
 */

const RULES = [
  {
    name: 'payments-ci',
    match: { issuers: ['test-cluster'], namespaces: ['payments', 'payments-*'], serviceAccounts: ['argo-*'] },
    policies: ['payments-read', 'payments-write'],
    ttlSeconds: 300,
  },
  { name: 'everyone-reads-status', match: { namespaces: ['*'] }, policies: ['status-read'] },
  { name: 'audit-on-request', match: { namespaces: ['payments'] }, requestable: ['payments-audit'] },
  { name: 'orders', match: { namespaces: ['orders'], serviceAccounts: ['argo-runner'] }, policies: ['orders-read'], ttlSeconds: 120 },
];
const POLICIES = ['payments-read', 'payments-write', 'status-read', 'payments-audit', 'orders-read', 'ledger-write'];
const TIME_CLAIMS = new Set(['iat', 'nbf', 'exp', 'jti']);

interface Case {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly scope: readonly string[] | undefined;
  readonly audience: string | undefined;
}

const cases: fc.Arbitrary<Case> = fc.record({
  namespace: fc.constantFrom('payments', 'payments-eu', 'orders', 'kube-system'),
  serviceAccount: fc.constantFrom('argo-runner', 'argo-reporter', 'default'),
  scope: fc.option(fc.uniqueArray(fc.constantFrom(...POLICIES), { minLength: 1, maxLength: 4 }), { nil: undefined }),
  audience: fc.option(fc.constantFrom('tyk', 'tyk-internal', 'billing'), { nil: undefined }),
});

function withoutTimes(claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !TIME_CLAIMS.has(name)));
}

describe('POST /v1/explain reaches the decision POST /token reaches', () => {
  const h = useHarness({ warmUp: true, config: () => ({ explain: { enabled: true }, rules: RULES }) });

  it('granted with the same policies and claims exactly when a token is issued; otherwise the same refusal', async () => {
    let granted = 0;
    let denied = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        // A pod of its own per case: the per-pod mint rate limit never decides a case.
        const subjectToken = await h.issuer.projectedToken({ namespace: c.namespace, serviceAccount: c.serviceAccount, podName: `step-${randomUUID().slice(0, 8)}`, podUid: randomUUID() });
        const extra: Record<string, string> = {
          ...(c.scope !== undefined && { scope: c.scope.join(' ') }),
          ...(c.audience !== undefined && { audience: c.audience }),
        };
        const form = { grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken, ...extra };
        const explainRes = await h.http.post('/v1/explain').type('form').send(form);
        assert.equal(explainRes.status, 200, explainRes.text);
        const explanation = JSON.parse(explainRes.text) as Explanation;
        const exchanged = await h.exchange(subjectToken, extra);
        if (exchanged.status === 200) {
          granted += 1;
          assert.equal(explanation.outcome.decision, 'granted', `issued, but explain said ${JSON.stringify(explanation.outcome)}`);
          if (explanation.outcome.decision !== 'granted') return;
          assert.equal(exchanged.body.scope, explanation.outcome.policies.join(' '));
          assert.equal(exchanged.body.expires_in, explanation.outcome.ttlSeconds);
          assert.deepEqual(withoutTimes(decodeJwt(exchanged.body.access_token as string)), withoutTimes(explanation.outcome.claims));
        } else {
          denied += 1;
          assert.equal(explanation.outcome.decision, 'denied', `refused ${exchanged.text}, but explain granted`);
          if (explanation.outcome.decision !== 'denied') return;
          assert.equal(explanation.outcome.reason, exchanged.body.reason);
          assert.equal(explanation.outcome.description, exchanged.body.error_description);
        }
      }),
      { numRuns: 80 },
    );
    // Both sides of the property were exercised, not only one.
    assert.ok(granted > 5 && denied > 5, `granted ${granted}, denied ${denied}`);
  });
});
