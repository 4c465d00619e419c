import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import {
  auditLines,
  eventually,
  exchangeOutcomes,
  metricValue,
  rawRedis,
  runBounded,
  startBrokers,
  type BrokerInstance,
  type MultiBroker,
} from '../support/multi-broker.js';

const skip = redisUnavailableReason();

/** Log lines of Redis state changes ("up" or "down"). */
function redisTransitions(lines: readonly Record<string, unknown>[], state: 'up' | 'down'): number {
  return lines.filter((line) => line.redis === state).length;
}

async function metricsOf(instance: BrokerInstance): Promise<string> {
  return (await instance.http.get('/metrics').expect(200)).text;
}

/** Calls per command since the server started, from INFO commandstats. */
async function commandCalls(raw: Redis): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const line of (await raw.info('commandstats')).split('\r\n')) {
    const match = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line);
    if (match) calls[match[1] as string] = Number(match[2]);
  }
  return calls;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

describe('the broker when Redis fails', { skip }, () => {
  describe('Redis killed under load, then restarted', () => {
    let server: RedisServer;
    let raw: Redis;
    let b: MultiBroker;

    before(async () => {
      server = await startRedisServer();
      b = await startBrokers({
        count: 1,
        config: () => ({
          // A long command timeout: this test is about a vanished server (connection closed), and a stall of
          // this test process's event loop must not read as a second outage.
          cache: { redis: { url: server.url, keyPrefix: 'faults:', commandTimeoutMs: 2000 } },
          limits: { minting: { enabled: true, ratePerMinute: 600_000, burst: 100_000 } },
          audit: { redisStream: { key: 'faults:audit', maxLen: 1000 } },
        }),
      });
    });
    after(async () => {
      raw?.disconnect();
      await b?.close();
      await server?.stop();
    });

    it('answers every exchange while Redis dies, logs the outage once, and resumes the cache after a restart', async () => {
      const one = b.at(0);
      // 20 workloads (pods), each with two different subject tokens: requests repeat tokens and identities.
      const pool: string[] = [];
      for (let pod = 0; pod < 20; pod++) {
        for (let copy = 0; copy < 2; copy++) pool.push(await b.issuer.projectedToken({ podUid: `load-pod-${pod}` }));
      }
      const TOTAL = 200;
      const KILL_AT = 80;
      let killed: Promise<void> | undefined;
      const results = await runBounded(TOTAL, 10, async (i) => {
        if (i >= KILL_AT) {
          // The first request past the mark kills Redis (up to 9 requests are still in flight); every later
          // request starts after the kill.
          killed ??= server.kill();
          await killed;
        }
        const res = await one.exchange(pool[i % pool.length] as string);
        return { status: res.status, token: res.body.access_token as unknown, error: res.body.error as unknown };
      });

      assert.deepEqual(
        results.filter((r) => r.status !== 200),
        [],
        'every exchange succeeded',
      );
      assert.ok(results.every((r) => typeof r.token === 'string'));
      assert.equal(await eventually(() => one.broker.redis?.up === false, 2000), true);

      const lines = one.logs.lines;
      assert.equal(redisTransitions(lines, 'down'), 1, 'the outage is logged once, not per request');
      assert.equal(redisTransitions(lines, 'up'), 1);

      const outcomes = exchangeOutcomes(lines);
      assert.equal(outcomes.length, TOTAL);
      const issued = outcomes.filter((o) => o === 'issued').length;
      assert.equal(issued + outcomes.filter((o) => o === 'cached').length, TOTAL);
      assert.ok(issued >= 20, `every workload minted at least once (issued ${issued})`);
      assert.equal(auditLines(lines).length, issued, 'one audit record per issued token');

      const metrics = await metricsOf(one);
      assert.equal(metricValue(metrics, 'token_broker_redis_up'), 0);
      const errors = metricValue(metrics, 'token_broker_cache_requests_total{result="error"}') ?? 0;
      assert.ok(errors >= TOTAL - KILL_AT, `every lookup after the kill is an error (${errors})`);
      const lookups = ['hit', 'miss', 'stale', 'error']
        .map((result) => metricValue(metrics, `token_broker_cache_requests_total{result="${result}"}`) ?? 0)
        .reduce((a, c) => a + c, 0);
      assert.equal(lookups, TOTAL, 'one cache lookup per exchange');
      assert.equal(metricValue(metrics, 'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster"}'), issued);

      // Restart on the same port: the broker reconnects by itself.
      await server.restart();
      await one.broker.redis?.waitUntilUp(10_000);
      assert.equal(one.broker.redis?.up, true);
      assert.equal(redisTransitions(one.logs.lines, 'up'), 2);
      assert.equal(redisTransitions(one.logs.lines, 'down'), 1);

      raw = rawRedis(server.url);
      const subject = await b.issuer.projectedToken({ podUid: 'after-restart' });
      const first = await one.exchange(subject).expect(200);
      const second = await one.exchange(subject).expect(200);
      assert.equal(second.body.access_token, first.body.access_token);
      // The restarted server was empty: exactly the one token just cached, and its rate-limit bucket.
      const tokenKeys = await raw.keys('faults:t:*');
      assert.equal(tokenKeys.length, 1);
      assert.equal(JSON.parse((await raw.get(tokenKeys[0] as string)) as string).token, first.body.access_token);
      assert.equal((await raw.keys('faults:rl:*')).length, 1);
      assert.equal(await eventually(async () => (await raw.xlen('faults:audit')) === 1, 2000), true, 'the audit stream resumes');

      const after = await metricsOf(one);
      assert.equal(metricValue(after, 'token_broker_redis_up'), 1);
      assert.equal(
        metricValue(after, 'token_broker_cache_requests_total{result="hit"}'),
        (metricValue(metrics, 'token_broker_cache_requests_total{result="hit"}') ?? 0) + 1,
      );
      assert.equal(auditLines(one.logs.lines).length, exchangeOutcomes(one.logs.lines).filter((o) => o === 'issued').length);
    });
  });

  describe('Redis paused (SIGSTOP): connections open, no answers', () => {
    const COMMAND_TIMEOUT_MS = 100;
    let server: RedisServer;
    let raw: Redis;
    let b: MultiBroker;

    before(async () => {
      server = await startRedisServer();
      raw = rawRedis(server.url);
      b = await startBrokers({
        count: 1,
        config: () => ({
          cache: { redis: { url: server.url, keyPrefix: 'paused:', commandTimeoutMs: COMMAND_TIMEOUT_MS } },
          audit: { redisStream: { key: 'paused:audit', maxLen: 1000 } },
        }),
      });
    });
    after(async () => {
      server?.resume();
      raw?.disconnect();
      await b?.close();
      await server?.stop();
    });

    it('waits one command timeout once, then bypasses Redis until a probe finds it answering again', async () => {
      const one = b.at(0);
      const warm = await b.issuer.projectedToken({ podUid: 'paused-warm' });
      await one.exchange(warm).expect(200);
      await one.exchange(warm).expect(200);
      assert.deepEqual(exchangeOutcomes(one.logs.lines), ['issued', 'cached']);

      const subjects: string[] = [];
      for (let i = 0; i < 15; i++) subjects.push(await b.issuer.projectedToken({ podUid: `paused-pod-${i}` }));
      await one.broker.redis?.waitUntilUp(5000);
      const callsBefore = await commandCalls(raw);
      const linesBefore = one.logs.lines.length;

      server.pause();
      const durations: number[] = [];
      try {
        for (const subject of subjects) {
          const started = performance.now();
          const res = await one.exchange(subject);
          durations.push(performance.now() - started);
          assert.equal(res.status, 200);
          assert.equal(typeof res.body.access_token, 'string');
        }
      } finally {
        server.resume();
      }

      for (const [i, ms] of durations.entries()) assert.ok(ms < 1500, `request ${i} took ${ms} ms with commandTimeoutMs ${COMMAND_TIMEOUT_MS}`);
      const rest = durations.slice(1);
      assert.ok(median(rest) < 50, `after the first timeout requests do not wait for Redis (median ${median(rest)} ms)`);
      const pausedLines = one.logs.lines.slice(linesBefore);
      assert.equal(redisTransitions(pausedLines, 'down'), 1);
      assert.equal(exchangeOutcomes(pausedLines).filter((o) => o === 'issued').length, 15);

      // A PING probe notices the server answers again.
      await one.broker.redis?.waitUntilUp(5000);
      assert.equal(redisTransitions(one.logs.lines.slice(linesBefore), 'up'), 1);

      // While paused, only the first request's GET reached the server (it is answered late, after the
      // resume); nothing else was sent: no lock, no rate-limit script, no write, no audit append.
      const callsAfter = await commandCalls(raw);
      const delta = (command: string) => (callsAfter[command] ?? 0) - (callsBefore[command] ?? 0);
      assert.deepEqual(
        { get: delta('get'), set: delta('set'), evalsha: delta('evalsha'), eval: delta('eval'), xadd: delta('xadd') },
        { get: 1, set: 0, evalsha: 0, eval: 0, xadd: 0 },
      );

      const subject = await b.issuer.projectedToken({ podUid: 'after-resume' });
      const first = await one.exchange(subject).expect(200);
      const second = await one.exchange(subject).expect(200);
      assert.equal(second.body.access_token, first.body.access_token);
      assert.equal((await raw.keys('paused:t:*')).length, 2, 'the warm-up token and this one: nothing minted during the pause was stored');

      const metrics = await metricsOf(one);
      assert.equal(metricValue(metrics, 'token_broker_redis_up'), 1);
      assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="error"}'), 15);
      assert.equal(auditLines(one.logs.lines).length, exchangeOutcomes(one.logs.lines).filter((o) => o === 'issued').length);
    });
  });
});
