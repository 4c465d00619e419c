/**
 * The open-loop load generator of `npm run bench`, in a process of its own: `node open-loop-client.js URL RATE
 * SECONDS BODY_FILE` sends POST URL with the form body in BODY_FILE at Poisson-distributed times, RATE a second for
 * SECONDS, whatever the answers do, each on a free keep-alive socket, and prints one JSON line: the latencies' p50,
 * p99 and the status counts.
 *
 * Latency runs from the scheduled start, so a stall counts for every request it delays (no coordinated omission).
 * That includes the client's own stalls: run inside the bench process, whose heap holds the ~100,000 signed tokens
 * of the memory check, its garbage collection pauses showed up as server latency. Here the heap is a few MB.
 * Bounded by SECONDS and by 1.5 x RATE x SECONDS requests.
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [url = '', rateText = '', secondsText = '', bodyFile = ''] = process.argv.slice(2);
const rate = Number(rateText);
const durationSeconds = Number(secondsText);
if (url === '' || !(rate > 0) || !(durationSeconds > 0) || bodyFile === '') {
  console.error('usage: open-loop-client URL RATE SECONDS BODY_FILE');
  process.exit(2);
}
const body = readFileSync(bodyFile, 'utf8');
const { hostname, port, pathname } = new URL(url);
const agent = new Agent({ keepAlive: true, maxSockets: 512 });
// Preallocated: pushing onto a growing array is itself garbage the client would have to collect mid-run.
const maxRequests = Math.ceil(rate * durationSeconds * 1.5);
const latencies = new Float64Array(maxRequests);
let answered = 0;
const statuses: Record<string, number> = {};
let socketErrors = 0;
let inFlight = 0;
let allSent = false;
let finish: () => void = () => undefined;
const finished = new Promise<void>((resolve) => {
  finish = resolve;
});

function settle(): void {
  inFlight--;
  if (allSent && inFlight === 0) finish();
}

function send(scheduledAt: number): void {
  inFlight++;
  const req = request(
    {
      agent,
      hostname,
      port,
      method: 'POST',
      path: pathname,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      res.resume();
      res.on('end', () => {
        const status = String(res.statusCode ?? 0);
        statuses[status] = (statuses[status] ?? 0) + 1;
        latencies[answered++] = performance.now() - scheduledAt;
        settle();
      });
    },
  );
  req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  req.on('error', () => {
    socketErrors++;
    settle();
  });
  req.end(body);
}

const started = performance.now();
const end = started + durationSeconds * 1000;
let next = started;
let sent = 0;
while (next < end && sent < maxRequests) {
  while (next <= performance.now() && next < end && sent < maxRequests) {
    send(next);
    sent++;
    next += (-Math.log(1 - Math.random()) * 1000) / rate;
  }
  await sleep(Math.max(0, Math.min(5, next - performance.now())));
}
allSent = true;
if (inFlight === 0) finish();
await finished;
agent.destroy();

const sorted = latencies.subarray(0, answered).sort();
// The bench's percentile: the smallest latency at or above p% of the answers.
const percentile = (p: number): number => (sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0));
console.log(JSON.stringify({ requests: answered, seconds: durationSeconds, p50Ms: percentile(50), p99Ms: percentile(99), statuses, socketErrors }));
