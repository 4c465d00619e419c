import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, startHarness, SUBJECT_AUDIENCE, type Harness } from '../support/broker-harness.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { eventually } from '../support/multi-broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import type { BrokerConfig, BrokerConfigInput } from '../../src/server/config/schema.js';

/*
 * Issuers across a configuration reload (Broker.reconfigure), against stand-in issuers over real HTTP: an issuer
 * configured exactly as before keeps its loaded key set (no refetch, no re-verification), a new issuer's keys are
 * loaded, and a removed or changed issuer's remembered verifications are never used again.
 */

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function started(): Promise<Harness> {
  const h = await startHarness();
  closers.push(() => h.close());
  await h.broker.warmUp();
  return h;
}

function configOf(h: Harness, change: Partial<BrokerConfigInput>): BrokerConfig {
  const result = validateConfig({ ...defaultConfig(h.issuer.issuer), ...change });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const jwksFetches = (issuer: StandInIssuer) => [...issuer.requests].filter(([path]) => path.includes('jwks')).reduce((n, [, count]) => n + count, 0);

describe('issuers across a reload', () => {
  it('a new issuer that cannot be reached keeps the broker ready; its tokens are refused, the others\' are exchanged', async () => {
    const h = await started();
    const unreachable = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, now: h.clock.now });
    closers.push(() => unreachable.close());
    unreachable.setAvailable(false);
    const issuers = [...defaultConfig(h.issuer.issuer).issuers, { name: 'down-cluster', issuer: unreachable.issuer, audiences: [SUBJECT_AUDIENCE] }];
    assert.equal(h.broker.reconfigure(configOf(h, { issuers })).applied, true);
    const report = h.broker.readiness();
    assert.equal(report.ready, true);
    assert.match(String(report.checks['issuer:down-cluster']?.detail), /added by a configuration reload/);
    assert.equal((await h.exchange(await unreachable.projectedToken()).expect(503)).body.reason, 'issuer_unavailable');
    await h.exchange(await h.issuer.projectedToken()).expect(200);
  });

  it('an unchanged issuer keeps its key set and its remembered verifications: nothing is fetched again', async () => {
    const h = await started();
    const subject = await h.issuer.projectedToken();
    await h.exchange(subject).expect(200);
    const before = h.broker.issuers.all[0];
    const fetched = jwksFetches(h.issuer);
    const outcome = h.broker.reconfigure(configOf(h, { rules: [{ name: 'only-status', match: { namespaces: ['*'] }, policies: ['status-read'] }] }));
    assert.equal(outcome.applied, true);
    assert.equal(h.broker.issuers.all[0], before, 'the same TrustedIssuer, loaded keys and all');
    assert.equal(h.broker.verifiedTokens.size, 1, 'its verified token is kept');
    assert.equal((await h.exchange(subject).expect(200)).body.scope, 'status-read');
    assert.equal(jwksFetches(h.issuer), fetched, 'no JWKS fetch');
  });

  it('a new issuer\'s keys are loaded after the reload, and its tokens are exchanged', async () => {
    const h = await started();
    const second = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, now: h.clock.now });
    closers.push(() => second.close());
    const subject = await second.projectedToken();
    assert.equal((await h.exchange(subject).expect(400)).body.reason, 'unknown_issuer');
    const issuers = [...defaultConfig(h.issuer.issuer).issuers, { name: 'second-cluster', issuer: second.issuer, audiences: [SUBJECT_AUDIENCE] }];
    assert.equal(h.broker.reconfigure(configOf(h, { issuers })).applied, true);
    assert.equal(h.broker.readiness().ready, true, 'a new issuer whose keys are not loaded yet does not make the broker unready');
    assert.ok(await eventually(() => h.broker.issuers.all[1]?.keys.loaded === true, 10_000), 'the new issuer\'s keys are loaded');
    const granted = await h.exchange(subject).expect(200);
    assert.match(String(granted.body.scope), /status-read/);
  });

  it('a removed issuer: its token, verified and remembered before the reload, is refused unknown_issuer', async () => {
    const h = await started();
    const second = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, now: h.clock.now });
    closers.push(() => second.close());
    const both = [...defaultConfig(h.issuer.issuer).issuers, { name: 'second-cluster', issuer: second.issuer, audiences: [SUBJECT_AUDIENCE] }];
    h.broker.reconfigure(configOf(h, { issuers: both }));
    await h.broker.warmUp();
    const subject = await second.projectedToken();
    await h.exchange(subject).expect(200);
    assert.equal(h.broker.reconfigure(configOf(h, {})).applied, true);
    const refused = await h.exchange(subject).expect(400);
    assert.equal(refused.body.reason, 'unknown_issuer');
  });

  it('an issuer whose audiences changed: a token remembered under the old audience is refused audience_mismatch', async () => {
    const h = await started();
    const subject = await h.issuer.projectedToken();
    await h.exchange(subject).expect(200);
    const [issuer] = defaultConfig(h.issuer.issuer).issuers;
    assert.equal(h.broker.reconfigure(configOf(h, { issuers: [{ ...issuer, name: 'test-cluster', issuer: h.issuer.issuer, audiences: ['another-audience'] }] })).applied, true);
    assert.equal(h.broker.verifiedTokens.size, 0, 'the changed issuer\'s remembered verifications are purged');
    const refused = await h.exchange(subject).expect(400);
    assert.equal(refused.body.reason, 'audience_mismatch');
  });
});
