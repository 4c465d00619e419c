import { describe, it } from 'node:test';
import { parseResourceIndicator } from '../../src/server/rules/resource-indicator.js';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { explainDecision, type ExplainInput } from '../../src/server/explain/explain-decision.js';
import { renderExplanation } from '../../src/tools/explain/render-explanation.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';

const result = validateConfig(
  {
    server: { publicUrl: 'https://token-broker.test' },
    issuers: [{ name: 'cluster-a', issuer: 'https://cluster-a.example', audiences: ['tyk-token-broker'] }],
    rules: [
      { name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read', '{serviceAccount}-write'], allowedPolicies: ['payments-*'] },
      { name: 'orders', match: { namespaces: ['orders'] }, policies: ['orders-read'] },
    ],
  },
  { requireKeysDir: false },
);
if (!result.ok) throw new Error(JSON.stringify(result.problems));
const config = result.config;

const IDENTITY: WorkloadIdentity = {
  issuerName: 'cluster-a',
  issuer: 'https://cluster-a.example',
  subject: 'system:serviceaccount:payments:runner',
  namespace: 'payments',
  serviceAccount: 'runner',
  claims: {},
};

function render(input: Partial<ExplainInput>): string {
  return renderExplanation(
    explainDecision({ config, rules: compileRules(config.rules), identity: IDENTITY, nowSeconds: 1_767_225_600, verification: 'verified', ...input }),
  );
}

describe('renderExplanation', () => {
  it('a grant: identity, rules with their tiers and dropped outputs, policies, the claims', () => {
    assert.equal(
      render({}),
      `Identity
  issuer           cluster-a (https://cluster-a.example)
  subject          system:serviceaccount:payments:runner
  namespace        payments
  service account  runner
  pod              (none)
  workflow         (none)
  node             (none)
  labels           namespace not looked up, service account not looked up
                   pod not looked up, pod annotations not looked up

Request
  scope            (not given: every granted policy)
  audience         tyk

Rules
  MATCH    payments [admin]
           dropped: "runner-write" is not in allowedPolicies [payments-*]
  no match orders   [admin]: namespace "payments" matches none of [orders]

Policies
  granted          payments-read
  requestable      (none)

Outcome: GRANTED
  policies         payments-read
  audience         tyk
  ttl              600s
  claims
    {
      "iss": "https://token-broker.test",
      "sub": "system:serviceaccount:payments:runner",
      "aud": "tyk",
      "iat": 1767225600,
      "nbf": 1767225600,
      "exp": 1767226200,
      "jti": "(generated at exchange)",
      "pol": "payments-read",
      "scope": "payments-read",
      "workload": {
        "issuer": "cluster-a",
        "namespace": "payments",
        "serviceAccount": "runner"
      }
    }`,
    );
  });

  it('a resource asked for is shown under Request, after the scope; its refusal is the outcome', () => {
    const lines = render({ resource: parseResourceIndicator('https://gateway.example.com/orders/') }).split('\n');
    const scopeAt = lines.indexOf('  scope            (not given: every granted policy)');
    assert.equal(lines[scopeAt + 1], '  resource         https://gateway.example.com/orders/');
    assert.ok(lines.includes('Outcome: DENIED (unknown_resource)'), lines.join('\n'));
  });

  it('a denial of an unverified token: the banner first, the reason, the notes last', () => {
    const text = render({ verification: 'unverified: decoded offline', scope: ['orders-read'], notes: ['first note'] });
    const lines = text.split('\n');
    assert.equal(lines[0], '*** unverified: decoded offline. NOBODY CHECKED THIS TOKEN: not its signature, its pod or its labels. ***');
    assert.equal(lines[1], '');
    assert.ok(lines.includes('  scope            orders-read'));
    assert.deepEqual(lines.slice(-7), [
      '  requestable      (none)',
      '',
      'Outcome: DENIED (scope_not_granted)',
      '  description      The requested scope includes policies this workload is not granted: orders-read.',
      '',
      'Notes',
      '  - first note',
    ]);
  });

  it('a refusal before the rules: only the banner, the reason and the notes', () => {
    assert.equal(
      renderExplanation({
        verification: 'identity fixture',
        outcome: { decision: 'denied', reason: 'not_pod_bound', description: 'The subject token is not bound to a pod.' },
        notes: [],
      }),
      `*** IDENTITY FIXTURE: not a token. Labels and pod state are what the fixture says. ***

Outcome: DENIED (not_pod_bound) before any rule was applied
  description      The subject token is not bound to a pod.`,
    );
  });
});
