import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, startHarness, type Harness, type HarnessOptions } from '../support/broker-harness.js';
import { validateConfig } from '../../src/server/config/validate-config.js';

// metrics.namespaceLabel, through a real scrape of /metrics: off (the default) the exchanges counter has only
// outcome and reason; on, it also has the workload's namespace, '' when the exchange ended before a verified
// identity was known (so a caller cannot choose label values with an unverified token).

/** Every sample line of token_broker_exchanges_total, sorted. */
function exchangeSamples(exposition: string): string[] {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith('token_broker_exchanges_total'))
    .sort();
}

/** The same mix of exchanges against every configuration: known namespaces, and refusals before any identity. */
async function exchangeMix(h: Harness): Promise<void> {
  const payments = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner' });
  await h.exchange(payments).expect(200);
  await h.exchange(payments).expect(200);
  assert.equal((await h.exchange(payments, { scope: 'admin' }).expect(400)).body.reason, 'scope_not_granted');
  await h.exchange(await h.issuer.projectedToken({ namespace: 'orders', serviceAccount: 'default' })).expect(200);

  // Claims a namespace but fails verification: its payload is swapped under the original signature.
  const [header, , signature] = payments.split('.');
  const forgedClaims = Buffer.from(JSON.stringify({ iss: h.issuer.issuer, sub: 'x', 'kubernetes.io': { namespace: 'chosen-by-caller' } })).toString('base64url');
  assert.equal((await h.exchange(`${header}.${forgedClaims}.${signature}`).expect(400)).body.reason, 'bad_signature');
  const expired = await h.issuer.projectedToken({ namespace: 'payments', offsetSeconds: -7200, lifetimeSeconds: 600 });
  assert.equal((await h.exchange(expired).expect(400)).body.reason, 'expired');
  // Refused before it becomes an exchange (recordRefusal): no identity at all.
  assert.equal((await h.http.post('/token').type('form').send({ grant_type: 'password' }).expect(400)).body.reason, 'unsupported_grant_type');
}

const OFF_SAMPLES = [
  'token_broker_exchanges_total{outcome="cached",reason="ok",issuer="test-cluster"} 1',
  'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster"} 2',
  'token_broker_exchanges_total{outcome="rejected",reason="bad_signature",issuer=""} 1',
  'token_broker_exchanges_total{outcome="rejected",reason="expired",issuer="test-cluster"} 1',
  'token_broker_exchanges_total{outcome="rejected",reason="scope_not_granted",issuer="test-cluster"} 1',
  'token_broker_exchanges_total{outcome="rejected",reason="unsupported_grant_type",issuer=""} 1',
];

async function withHarness(options: HarnessOptions, body: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness(options);
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

describe('metrics.namespaceLabel', () => {
  const offCases: { name: string; options: HarnessOptions }[] = [
    { name: 'omitted (default)', options: {} },
    { name: 'false', options: { config: () => ({ metrics: { namespaceLabel: false } }) } },
  ];
  for (const { name, options } of offCases) {
    it(`${name}: exchanges are counted by outcome and reason only, and no namespace appears in the scrape`, async () => {
      await withHarness(options, async (h) => {
        assert.equal(h.config.metrics.namespaceLabel, false);
        await exchangeMix(h);
        const text = (await h.http.get('/metrics').expect(200)).text;
        assert.deepEqual(exchangeSamples(text), OFF_SAMPLES);
        for (const namespace of ['namespace=', 'payments', 'orders', 'chosen-by-caller']) assert.equal(text.includes(namespace), false, namespace);
      });
    });
  }

  it('true: exchanges are also counted by verified namespace, with "" when none was verified', async () => {
    await withHarness({ config: () => ({ metrics: { namespaceLabel: true } }) }, async (h) => {
      assert.equal(h.config.metrics.namespaceLabel, true);
      await exchangeMix(h);
      const text = (await h.http.get('/metrics').expect(200)).text;
      assert.deepEqual(exchangeSamples(text), [
        'token_broker_exchanges_total{outcome="cached",reason="ok",issuer="test-cluster",namespace="payments"} 1',
        'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster",namespace="orders"} 1',
        'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster",namespace="payments"} 1',
        'token_broker_exchanges_total{outcome="rejected",reason="bad_signature",issuer="",namespace=""} 1',
        'token_broker_exchanges_total{outcome="rejected",reason="expired",issuer="test-cluster",namespace=""} 1',
        'token_broker_exchanges_total{outcome="rejected",reason="scope_not_granted",issuer="test-cluster",namespace="payments"} 1',
        'token_broker_exchanges_total{outcome="rejected",reason="unsupported_grant_type",issuer="",namespace=""} 1',
      ]);
      assert.equal(text.includes('chosen-by-caller'), false, 'an unverified namespace never becomes a label value');
    });
  });

  it('validation: the default is false, and an unknown key under metrics is refused with its path', () => {
    const base = defaultConfig('https://issuer.test');
    const defaults = validateConfig(base);
    assert.equal(defaults.ok && defaults.config.metrics.namespaceLabel, false);
    const refused = validateConfig({ ...base, metrics: { namespaceLabel: true, podLabel: true } });
    assert.equal(refused.ok, false);
    assert.deepEqual(refused.ok ? [] : refused.problems.map((p) => p.path), ['metrics.podLabel']);
    const wrongType = validateConfig({ ...base, metrics: { namespaceLabel: 'yes' } });
    assert.deepEqual(wrongType.ok ? [] : wrongType.problems.map((p) => p.path), ['metrics.namespaceLabel']);
  });
});
