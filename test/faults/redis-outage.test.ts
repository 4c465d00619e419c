import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { auditLines, exchangeOutcomes, metricValue, rawRedis, startBrokers, type MultiBroker } from '../support/multi-broker.js';
import { runLoad, tally } from './load.js';

/*
 * Redis stopped in the middle of a load on two replicas and restarted while the load still runs. It extends
 * test/cache/redis-faults.test.ts, which kills Redis under load on one replica and restarts it after the load (and
 * pauses it with SIGSTOP): here the restart happens mid-load, across replicas, with every request timed.
 */

const skip = redisUnavailableReason();
const COMMAND_TIMEOUT_MS = 250;
/** Signing, verification and a loaded two-core machine shared with other test files. */
const MARGIN_MS = 2000;

describe('fault: Redis stopped mid-load and restarted mid-load (two replicas)', { skip, timeout: 180_000 }, () => {
  let server: RedisServer;
  let raw: Redis | undefined;
  let b: MultiBroker;

  before(async () => {
    server = await startRedisServer();
    b = await startBrokers({
      count: 2,
      config: () => ({
        cache: { redis: { url: server.url, keyPrefix: 'rfault:', commandTimeoutMs: COMMAND_TIMEOUT_MS } },
        limits: { minting: { enabled: true, ratePerMinute: 600_000, burst: 100_000 } },
        audit: { redisStream: { key: 'rfault:audit', maxLen: 10_000 } },
      }),
    });
  });
  after(async () => {
    raw?.disconnect();
    await b?.close();
    await server?.stop();
  });

  it('every exchange is answered with a token, none waits past the command timeout, audits = issued, the shared cache resumes', async (t) => {
    const pool: string[] = [];
    for (let pod = 0; pod < 30; pod++) {
      for (let copy = 0; copy < 2; copy++) pool.push(await b.issuer.projectedToken({ podUid: `redis-outage-${pod}` }));
    }
    // About 100 requests a second: Redis is down for about one second, and the load goes on for three more
    // after the restart, across the client's reconnection back-off (at most 2 s).
    const TOTAL = 500;
    const KILL_AT = 100;
    const RESTART_AT = 200;
    const LATE_PHASE_AT = 400;
    let killedAt = -1;
    let restartedAt = -1;
    const hits = async () => {
      let sum = 0;
      for (const instance of b.instances) sum += metricValue((await instance.http.get('/metrics')).text, 'token_broker_cache_requests_total{result="hit"}') ?? 0;
      return sum;
    };
    let hitsBeforeLatePhase = 0;
    let upAtLatePhase = false;
    const { report, results } = await runLoad({
      count: TOTAL,
      concurrency: 6,
      pauseMs: 60,
      deadlineMs: 60_000,
      async before(i) {
        if (i === KILL_AT) {
          await server.kill();
          killedAt = i;
        }
        if (i === RESTART_AT) {
          await server.restart();
          restartedAt = i;
        }
        if (i === LATE_PHASE_AT) {
          upAtLatePhase = b.instances.every((instance) => instance.broker.redis?.up === true);
          hitsBeforeLatePhase = await hits();
        }
      },
      async send(i) {
        const res = await b.at(i).exchange(pool[i % pool.length] as string);
        return { status: res.status, body: res.body as unknown };
      },
    });
    t.diagnostic(`load: ${JSON.stringify(report)}`);
    assert.equal(killedAt, KILL_AT);
    assert.equal(restartedAt, RESTART_AT);

    assert.deepEqual(tally(results), { '200': TOTAL }, 'every exchange could be served, and was');
    // During the load's last phase Redis is back: the shared cache answers again, on both replicas.
    assert.equal(upAtLatePhase, true, 'both replicas had reconnected 2 s after the restart');
    assert.ok((await hits()) - hitsBeforeLatePhase >= 50, `cache hits in the last ${TOTAL - LATE_PHASE_AT} requests: ${(await hits()) - hitsBeforeLatePhase}`);
    assert.equal(report.skipped, 0);
    assert.ok(report.slowestMs < COMMAND_TIMEOUT_MS + MARGIN_MS, `slowest request ${report.slowestMs} ms`);

    const lines = b.lines();
    const outcomes = exchangeOutcomes(lines);
    const issued = outcomes.filter((o) => o === 'issued').length;
    assert.equal(outcomes.length, TOTAL);
    assert.equal(issued + outcomes.filter((o) => o === 'cached').length, TOTAL);
    assert.equal(auditLines(lines).length, issued, 'one audit record per issued token, on every replica');
    t.diagnostic(`issued ${issued}, cached ${TOTAL - issued}`);

    // Both replicas reconnect by themselves, and share the cache again.
    for (const instance of b.instances) await instance.broker.redis?.waitUntilUp(10_000);
    const subject = await b.issuer.projectedToken({ podUid: 'redis-outage-after' });
    const first = await b.at(0).exchange(subject).expect(200);
    const second = await b.at(1).exchange(subject).expect(200);
    assert.equal(second.body.access_token, first.body.access_token, 'the other replica serves the token from Redis');

    // The stream is best effort, the log is the record: every streamed or unstreamed record is an audited one.
    raw = rawRedis(server.url);
    const audited = new Set(auditLines(b.lines()).map((line) => String(line.jti)));
    const streamed = (await raw.xrange('rfault:audit', '-', '+')).map(([, fields]) => String((JSON.parse(String(fields[1])) as { jti: unknown }).jti));
    const unstreamed = b.lines().filter((line) => line.msg === 'audit record not streamed to Redis (it is in the log)').map((line) => String(line.jti));
    assert.ok(streamed.length >= 1, 'the stream resumed on the restarted server');
    for (const jti of [...streamed, ...unstreamed]) assert.ok(audited.has(jti), `${jti} has an audit log line`);
    assert.equal(streamed.filter((jti) => unstreamed.includes(jti)).length, 0);
    t.diagnostic(`audit stream after restart: ${streamed.length} records; not streamed (logged only): ${unstreamed.length}`);
  });
});
