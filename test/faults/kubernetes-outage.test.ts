import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DownMode } from '../fakes/stand-in-kubernetes.js';
import { startClusterHarness, type ClusterHarness } from '../support/cluster-harness.js';
import { auditCount } from '../security/refusal.js';
import { runLoad, type LoadResult } from './load.js';

/*
 * The Kubernetes API fails in four ways in the middle of a load, with pod binding enforced: every exchange made
 * while it is down is refused with 503 kubernetes_unavailable, including those whose token is already in the
 * broker's cache (the binding is checked before the cache); none waits longer than the API timeout; and tokens
 * flow again when it is back. Single requests per failure mode are in test/identity/kubernetes-exchange.test.ts.
 */

const CONCURRENCY = 4;
/** The metadata source's request timeout (src/server/kubernetes/kubernetes-metadata-source.ts) plus a loaded machine. */
const API_TIMEOUT_MS = 2000;
const MARGIN_MS = 1500;

const PHASES: ReadonlyArray<{ readonly from: number; readonly down: DownMode }> = [
  { from: 0, down: false },
  { from: 60, down: 'error503' },
  { from: 120, down: 'reset' },
  { from: 180, down: 'garbage' },
  { from: 220, down: 'hang' },
  { from: 232, down: false },
];
const TOTAL = 300;
/** Requests from here on wait until lookups sent during the hang have timed out (see sharesHungLookup). */
const SETTLED_AT = 250;
const phaseOf = (i: number): number => PHASES.findLastIndex((phase) => i >= phase.from);

describe('fault: the Kubernetes API down mid-load, pod binding enforced', { timeout: 180_000 }, () => {
  let h: ClusterHarness;

  before(async () => {
    h = await startClusterHarness({
      // No pod cache: every exchange asks the API, so the outage is seen by every request sent during it.
      kubernetes: { podBinding: 'enforce', cacheSeconds: { namespace: 60, serviceAccount: 60, pod: 0 } },
    });
    h.kube.putNamespace('payments');
    h.kube.putServiceAccount('payments', 'argo-runner');
  });
  after(async () => {
    h.kube.setDown(false);
    await h.close();
  });

  it('refuses every exchange with 503 kubernetes_unavailable while the API fails, never a token, then recovers', async (t) => {
    const live: string[] = [];
    // Nine live pods, one for each request index ending in 0 to 8; those ending in 9 carry the gone pod's token.
    for (let i = 0; i < 9; i++) {
      const pod = h.kube.putPod('payments', `step-live-${i}`, { serviceAccountName: 'argo-runner' });
      live.push(await h.issuer.projectedToken({ podName: `step-live-${i}`, podUid: pod.metadata.uid }));
    }
    // A pod that is gone: refused for that reason while the API answers.
    const gone = await h.issuer.projectedToken({ podName: 'step-gone', podUid: '99999999-0000-4000-8000-000000000000' });
    const isGone = (i: number) => i % 10 === 9;

    const auditsBefore = auditCount(h);
    const sentAt = new Map<number, number>();
    let recoveredAt = Number.POSITIVE_INFINITY;
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
      // Never wait for good: should the recovery never be reached, the assertions below say so.
      setTimeout(resolve, 60_000).unref();
    });
    const { report, results } = await runLoad({
      count: TOTAL,
      concurrency: CONCURRENCY,
      pauseMs: 2,
      deadlineMs: 90_000,
      before(i) {
        const phase = PHASES.find((p) => p.from === i);
        if (phase !== undefined) h.kube.setDown(phase.down);
        if (phase !== undefined && phase.from > 0 && phase.down === false) {
          recoveredAt = performance.now();
          setTimeout(settle, API_TIMEOUT_MS + 200);
        }
      },
      async send(i) {
        // The last stretch of the load starts once every lookup sent while the API hung has timed out.
        if (i >= SETTLED_AT) await settled;
        sentAt.set(i, performance.now());
        const res = await h.exchange(isGone(i) ? gone : (live[i % 10] as string));
        return { status: res.status, body: res.body as unknown };
      },
    });
    t.diagnostic(`load: ${JSON.stringify(report)}`);
    assert.equal(report.sent, TOTAL);
    assert.equal(report.failed, 0);

    const expected = (r: LoadResult, phase: number): string =>
      PHASES[phase]?.down !== false ? '503 kubernetes_unavailable' : isGone(r.i) ? '400 pod_not_found' : '200';
    const outcome = (r: LoadResult): string => (r.status === 200 ? '200' : `${r.status} ${r.reason ?? ''}`);
    /**
     * Concurrent lookups of one pod share one API request. A lookup sent while the API hung is still pending for up
     * to the timeout after the API is back, and requests for that pod share its failure meanwhile.
     */
    const sharesHungLookup = (r: LoadResult): boolean => r.i < SETTLED_AT && (sentAt.get(r.i) ?? 0) - recoveredAt < API_TIMEOUT_MS;
    const unexpected: string[] = [];
    for (const r of results) {
      // A request within CONCURRENCY of a switch may have met the API on either side of it.
      const allowed = new Set([phaseOf(r.i), phaseOf(Math.max(0, r.i - CONCURRENCY)), phaseOf(r.i + CONCURRENCY)].map((p) => expected(r, p)));
      if (phaseOf(r.i) === PHASES.length - 1 && sharesHungLookup(r)) allowed.add('503 kubernetes_unavailable');
      if (!allowed.has(outcome(r))) unexpected.push(`#${r.i} (${String(PHASES[phaseOf(r.i)]?.down)}): ${outcome(r)}, expected ${[...allowed].join(' or ')}`);
    }
    assert.deepEqual(unexpected, []);
    for (const [index, phase] of PHASES.entries()) {
      const inner = results.filter(
        (r) => [r.i - CONCURRENCY, r.i, r.i + CONCURRENCY].every((j) => phaseOf(Math.max(0, j)) === index) && !(index === PHASES.length - 1 && sharesHungLookup(r)),
      );
      const seen = [...new Set(inner.map(outcome))].sort();
      const wanted = phase.down === false ? ['200', '400 pod_not_found'] : ['503 kubernetes_unavailable'];
      assert.deepEqual(seen, wanted.filter((w) => inner.some((r) => expected(r, index) === w)), `API ${String(phase.down)}`);
      t.diagnostic(`API ${String(phase.down)}: ${inner.length} requests: ${seen.join(', ')}`);
    }

    // During the outage, no token at all: not even the ones the broker had cached for these pods.
    const duringOutage = results.filter((r) => [r.i - CONCURRENCY, r.i, r.i + CONCURRENCY].every((j) => PHASES[phaseOf(Math.max(0, j))]?.down !== false));
    assert.ok(duringOutage.length > 100);
    assert.equal(duringOutage.filter((r) => r.status === 200).length, 0);

    const hung = results.filter((r) => phaseOf(r.i) === 4);
    assert.ok(report.slowestMs < API_TIMEOUT_MS + MARGIN_MS, `slowest request ${report.slowestMs} ms (a hanging API is cut off at ${API_TIMEOUT_MS} ms)`);
    assert.ok(hung.some((r) => r.ms >= API_TIMEOUT_MS - 100), 'the hanging API was waited for, up to its timeout');

    const issued = h.logs.lines.filter((line) => line.outcome === 'issued').length;
    assert.equal(auditCount(h) - auditsBefore, issued, 'audit records = tokens issued');
    assert.equal(issued, live.length, 'one token per live pod, minted before the outage and served from the cache after it');
  });
});
