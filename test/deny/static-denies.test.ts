import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useHarness } from '../support/broker-harness.js';
import { expectMinted, expectRefusal } from '../security/refusal.js';
import { metricValue } from '../support/multi-broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { defaultConfig } from '../support/broker-harness.js';

describe('static denies (denies.static) over HTTP', () => {
  const h = useHarness({
    warmUp: true,
    config: () => ({
      denies: {
        static: [
          { id: 'freeze-payments-ci', namespace: 'payments', serviceAccount: 'argo-ci', reason: 'INC-7: leaked token\nrotate first' },
          { id: 'expired', namespace: 'billing', until: '2020-01-01T00:00:00Z', reason: 'long over' },
          { id: 'globby', namespace: 'pay*', reason: 'a literal name, not a glob' },
        ],
      },
    }),
  });

  it('refuse the denied identity with 403 access_denied, reason denied and the deny\'s reason; nothing is minted', async () => {
    const token = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-ci' });
    await expectRefusal(h, () => h.exchange(token), {
      status: 403,
      error: 'access_denied',
      reason: 'denied',
      description: 'An operator has denied tokens to this workload: INC-7: leaked token rotate first',
    });
    const line = h.logs.lines.filter((l) => l.reason === 'denied').at(-1);
    assert.deepEqual(line?.facts, { denyId: 'freeze-payments-ci', denyKind: 'namespace+serviceAccount' });
    const metrics = (await h.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_deny_hits_total{kind="namespace+serviceAccount"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_exchanges_total{outcome="rejected",reason="denied",issuer="test-cluster"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_denies_active{source="static"}'), 3);
  });

  it('serve an identity that matches only some facets, an expired deny, and a namespace a glob-looking deny does not name', async () => {
    await expectMinted(h, async () => h.exchange(await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner' })));
    await expectMinted(h, async () => h.exchange(await h.issuer.projectedToken({ namespace: 'billing', serviceAccount: 'argo-ci' })));
    await expectMinted(h, async () => h.exchange(await h.issuer.projectedToken({ namespace: 'payments-eu', serviceAccount: 'argo-ci' })));
  });
});

describe('static deny configuration', () => {
  const base = defaultConfig('https://issuer.example');
  const problems = (denies: unknown) => {
    const result = validateConfig({ ...base, denies });
    return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
  };
  it('is refused without a facet, with a facet containing a space, with an unknown issuer or a duplicate id', () => {
    assert.match(problems({ static: [{ id: 'a', reason: 'r' }] }).join('\n'), /denies\.static\[0\]: name at least one of/);
    assert.match(problems({ static: [{ id: 'a', namespace: 'a b', reason: 'r' }] }).join('\n'), /denies\.static\[0\]\.namespace: must be an exact name/);
    assert.match(problems({ static: [{ id: 'a', issuer: 'nope', reason: 'r' }] }).join('\n'), /denies\.static\[0\]\.issuer: no issuer is named "nope"/);
    assert.match(problems({ static: [{ id: 'a', namespace: 'x', reason: 'r' }, { id: 'a', namespace: 'y', reason: 'r' }] }).join('\n'), /denies\.static\[1\]\.id: duplicate deny id "a"/);
    assert.match(problems({ static: [{ id: 'a', namespace: 'x', reason: 'r', pod: 'p' }] }).join('\n'), /denies\.static\[0\]\.pod: unknown key/);
    assert.deepEqual(problems({ static: [{ id: 'a', namespace: 'x', reason: 'r', until: '2027-01-01T00:00:00Z' }] }), []);
  });
  it('refuses an admin listener without credentials', () => {
    const result = validateConfig({ ...base, admin: { port: 9090 } });
    assert.equal(result.ok, false);
    if (!result.ok) assert.deepEqual(result.problems, [{ path: 'admin', message: 'set bearerTokenFile, tls (mutual TLS), or both' }]);
  });
  it('refuses an admin listener on the public port', () => {
    const result = validateConfig({ ...base, admin: { port: 8080, bearerTokenFile: '/secret' } });
    assert.equal(result.ok, false);
    if (!result.ok) assert.deepEqual(result.problems, [{ path: 'admin.port', message: 'must differ from server.port: the admin endpoint is never served on the public listener' }]);
  });
});

describe('static denies on a configuration reload', () => {
  const h = useHarness({ warmUp: true });

  it('a static deny added by a reload refuses from the next exchange; removed by the next reload, it serves again', async () => {
    const subject = await h.issuer.projectedToken({ podUid: 'pod-reload' });
    const served = await h.exchange(subject).expect(200);
    const withDeny = validateConfig({ ...defaultConfig(h.issuer.issuer), denies: { static: [{ id: 'reloaded', serviceAccount: 'argo-runner', reason: 'INC-5 via reload' }] } });
    assert.ok(withDeny.ok);
    assert.equal(h.broker.reconfigure(withDeny.config).applied, true);
    assert.equal((await h.exchange(subject).expect(403)).body.error_description, 'An operator has denied tokens to this workload: INC-5 via reload');
    const without = validateConfig(defaultConfig(h.issuer.issuer));
    assert.ok(without.ok);
    assert.equal(h.broker.reconfigure(without.config).applied, true);
    assert.equal((await h.exchange(subject).expect(200)).body.access_token, served.body.access_token);
  });
});
