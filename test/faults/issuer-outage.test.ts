import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { useHarness } from '../support/broker-harness.js';
import { metricValue } from '../support/multi-broker.js';
import { auditCount } from '../security/refusal.js';
import { runLoad, type LoadResult } from './load.js';

/*
 * The issuer's JWKS endpoint goes down in the middle of a load and comes back. Tokens of the key the broker
 * already holds keep verifying throughout; tokens of a key the issuer rotated in meanwhile (a kid the broker does
 * not know) are refused as unknown_kid while the broker's keys are fresh, get 503 issuer_unavailable once a
 * refetch after the cool-down has failed (and for the rest of that cool-down: the broker cannot tell), and verify
 * once the issuer is back and the next cool-down allows a refetch. The JWKS is fetched exactly once per phase that
 * allows it.
 */

const JWKS_PATH = '/openid/v1/jwks';
const COOL_DOWN_S = 30;
const CONCURRENCY = 4;

/** The phases, by the index of the request at which each begins. */
const PHASES = [
  { from: 0, name: 'up, keys fresh', rotated: '400 unknown_kid', fetches: 0 },
  { from: 80, name: 'down, inside the cool-down', rotated: '400 unknown_kid', fetches: 0 },
  { from: 160, name: 'down, cool-down passed: the refetch fails', rotated: '503 issuer_unavailable', fetches: 1 },
  { from: 240, name: 'back up, inside the cool-down of the failed refetch', rotated: '503 issuer_unavailable', fetches: 0 },
  { from: 320, name: 'back up, cool-down passed: the refetch finds the key', rotated: '200', fetches: 1 },
] as const;
const TOTAL = 400;

const phaseOf = (i: number): number => PHASES.findLastIndex((phase) => i >= phase.from);
const outcomeOf = (r: LoadResult): string => (r.status === 200 ? '200' : `${r.status} ${r.reason ?? r.error ?? ''}`);

describe('fault: the issuer\'s JWKS endpoint down mid-load', { timeout: 120_000 }, () => {
  const h = useHarness({ warmUp: true });

  it('known keys keep verifying; an unknown kid gets unknown_kid, then issuer_unavailable after the cool-down, then a token on recovery', async (t) => {
    const known: string[] = [];
    for (let pod = 0; pod < 20; pod++) known.push(await h.issuer.projectedToken({ podUid: `issuer-outage-known-${pod}` }));
    // The issuer rotates to a key the broker has not fetched; the old key stays published.
    await h.issuer.rotateKey();
    const rotated: string[] = [];
    for (let pod = 0; pod < 5; pod++) rotated.push(await h.issuer.projectedToken({ podUid: `issuer-outage-rotated-${pod}` }));
    const isRotated = (i: number) => i % 5 === 4;

    const jwksFetches = () => h.issuer.requests.get(JWKS_PATH) ?? 0;
    const fetchesAtPhaseStart: number[] = [];
    const auditsBefore = auditCount(h);
    const { report, results } = await runLoad({
      count: TOTAL,
      concurrency: CONCURRENCY,
      pauseMs: 2,
      deadlineMs: 60_000,
      before(i) {
        const phase = PHASES.findIndex((p) => p.from === i);
        if (phase === -1) return;
        fetchesAtPhaseStart[phase] = jwksFetches();
        if (phase === 1) h.issuer.setAvailable(false);
        if (phase === 2 || phase === 4) h.clock.advance(COOL_DOWN_S + 1);
        if (phase === 3) h.issuer.setAvailable(true);
      },
      async send(i) {
        // Every fifth request carries the rotated key; both kinds go round all their workloads.
        const token = isRotated(i) ? rotated[Math.floor(i / 5) % rotated.length] : known[(Math.floor(i / 5) * 4 + (i % 5)) % known.length];
        const res = await h.exchange(token as string);
        return { status: res.status, body: res.body as unknown };
      },
    });
    t.diagnostic(`load: ${JSON.stringify(report)}`);
    assert.equal(report.sent, TOTAL);
    assert.equal(report.failed, 0);

    // Requests within CONCURRENCY of a phase change may have been verified on either side of it.
    const unexpected: string[] = [];
    for (const r of results) {
      const phase = phaseOf(r.i);
      const allowed = new Set<string>();
      for (const p of new Set([phase, phaseOf(Math.max(0, r.i - CONCURRENCY)), phaseOf(r.i + CONCURRENCY)])) {
        allowed.add(isRotated(r.i) ? (PHASES[p]?.rotated ?? '') : '200');
      }
      if (!allowed.has(outcomeOf(r))) unexpected.push(`#${r.i} (${PHASES[phase]?.name}): ${outcomeOf(r)}, expected ${[...allowed].join(' or ')}`);
    }
    assert.deepEqual(unexpected, []);
    for (const [index, phase] of PHASES.entries()) {
      const inner = results.filter((r) => phaseOf(r.i) === index && phaseOf(r.i - CONCURRENCY) === index && phaseOf(r.i + CONCURRENCY) === index);
      const rotatedOutcomes = new Set(inner.filter((r) => isRotated(r.i)).map(outcomeOf));
      const knownOutcomes = new Set(inner.filter((r) => !isRotated(r.i)).map(outcomeOf));
      assert.deepEqual([...knownOutcomes], ['200'], `${phase.name}: known keys verify`);
      assert.deepEqual([...rotatedOutcomes], [phase.rotated], `${phase.name}: the rotated kid`);
      const fetchesInPhase = (fetchesAtPhaseStart[index + 1] ?? jwksFetches()) - (fetchesAtPhaseStart[index] ?? 0);
      assert.equal(fetchesInPhase, phase.fetches, `${phase.name}: JWKS fetches`);
      t.diagnostic(`${phase.name}: ${inner.length} requests, known ${[...knownOutcomes].join('/')}, rotated ${[...rotatedOutcomes].join('/')}, JWKS fetches ${fetchesInPhase}`);
    }

    const issued = h.logs.lines.filter((line) => line.outcome === 'issued').length;
    assert.equal(auditCount(h) - auditsBefore, issued, 'audit records = tokens issued');
    assert.equal(issued, 25, 'one token per workload: 20 of the known key, 5 of the rotated one after recovery');
    assert.ok(report.slowestMs < 3000, `slowest request ${report.slowestMs} ms`);
    const metrics = (await h.http.get('/metrics')).text;
    assert.equal(metricValue(metrics, 'token_broker_jwks_refresh_total{issuer="test-cluster",result="error"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_jwks_refresh_total{issuer="test-cluster",result="success"}'), 2);
    const ready = await h.http.get('/readyz');
    assert.equal(ready.status, 200, 'an issuer whose keys once loaded never makes the broker unready');
  });
});
