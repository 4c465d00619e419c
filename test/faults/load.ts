/**
 * A bounded load for fault tests: a fixed number of requests, a few in flight at a time, and a deadline after which
 * no new request starts. Each result is classified, and the report (sent, succeeded, refused by status and reason,
 * failed) is what the tests assert on and print.
 */

export interface LoadResult {
  readonly i: number;
  /** HTTP status, or 0 when the request failed without an answer (connection refused or reset, timeout). */
  readonly status: number;
  /** The refusal's reason code, when the answer was an OAuth error. */
  readonly reason: string | undefined;
  readonly accessToken: string | undefined;
  readonly ms: number;
  /** ms since the load started, when the request was sent. */
  readonly sentAt: number;
  readonly error?: string;
}

export interface LoadReport {
  readonly sent: number;
  readonly succeeded: number;
  /** `${status} ${reason}` -> count, for answers with a reason code. */
  readonly refused: Readonly<Record<string, number>>;
  /** No answer, or an answer that is neither a token nor an OAuth error. */
  readonly failed: number;
  /** Requests not sent because the deadline passed. */
  readonly skipped: number;
  readonly slowestMs: number;
  readonly durationMs: number;
}

export interface LoadOptions {
  readonly count: number;
  readonly concurrency: number;
  /** No request starts after this many ms; the ones in flight finish. */
  readonly deadlineMs: number;
  /** Sends request `i`; resolves with the status and parsed body. Throwing counts as a failure. */
  readonly send: (i: number) => Promise<{ status: number; body: unknown }>;
  /** Each worker waits this long between its requests, so that the load spans the fault. Default 0. */
  readonly pauseMs?: number;
  /** A request not answered by then counts as failed ("hung"). Default 15 s. */
  readonly requestTimeoutMs?: number;
  /** Runs before request `i` is sent (and is awaited): where tests inject their faults. */
  readonly before?: (i: number) => Promise<void> | void;
}

function fieldOf(body: unknown, name: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

export async function runLoad(options: LoadOptions): Promise<{ report: LoadReport; results: LoadResult[] }> {
  const started = performance.now();
  const timeoutMs = options.requestTimeoutMs ?? 15_000;
  const results: LoadResult[] = [];
  let next = 0;
  let skipped = 0;
  const worker = async (): Promise<void> => {
    while (next < options.count) {
      const i = next++;
      if (performance.now() - started > options.deadlineMs) {
        skipped++;
        continue;
      }
      if (options.pauseMs !== undefined && options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      await options.before?.(i);
      const sentAt = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`hung: no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const { status, body } = await Promise.race([options.send(i), hung]);
        results.push({
          i,
          status,
          reason: fieldOf(body, 'reason'),
          accessToken: fieldOf(body, 'access_token'),
          ms: performance.now() - sentAt,
          sentAt: sentAt - started,
        });
      } catch (error) {
        results.push({ i, status: 0, reason: undefined, accessToken: undefined, ms: performance.now() - sentAt, sentAt: sentAt - started, error: error instanceof Error ? error.message : String(error) });
      } finally {
        clearTimeout(timer);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.count) }, worker));
  results.sort((a, b) => a.i - b.i);
  const refused: Record<string, number> = {};
  let succeeded = 0;
  let failed = 0;
  for (const r of results) {
    if (r.status === 200 && r.accessToken !== undefined) succeeded++;
    else if (r.status >= 400 && r.reason !== undefined) refused[`${r.status} ${r.reason}`] = (refused[`${r.status} ${r.reason}`] ?? 0) + 1;
    else failed++;
  }
  return {
    report: {
      sent: results.length,
      succeeded,
      refused,
      failed,
      skipped,
      slowestMs: Math.round(Math.max(0, ...results.map((r) => r.ms))),
      durationMs: Math.round(performance.now() - started),
    },
    results,
  };
}

/** Counts of `${status} ${reason}` (or `200`) among results. */
export function tally(results: readonly LoadResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    const key = r.status === 200 ? '200' : r.reason !== undefined ? `${r.status} ${r.reason}` : `failed ${r.status} ${r.error ?? ''}`.trim();
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
