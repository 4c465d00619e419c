/**
 * Reads a V8 .cpuprofile (`node --cpu-prof`) and lists where the time went: the frames with the most self time,
 * and the same time grouped by origin (broker src/, each npm package, Node internals, GC, idle). Used by
 * bench/run.ts --profile; runnable alone: `tsx bench/profile-summary.ts FILE [N]`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileFrame {
  readonly name: string;
  readonly selfMs: number;
  readonly selfPercent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Requests the profiled process served, when known, and its busy main-thread time per request. */
  readonly requests?: number;
  readonly busyUsPerRequest?: number;
  /** Excluding (idle) and (program): the share of busy time. */
  readonly busyMs: number;
  readonly top: readonly ProfileFrame[];
  readonly byOrigin: readonly ProfileFrame[];
  /**
   * The broker's own functions by inclusive time (self plus everything they called, each sample counted once per
   * function): how a request's cost divides between its stages (verification, rules, signing, the record, the
   * answer), which self time, spread over many small frames, does not show. `selfMs` / `selfPercent` hold the
   * inclusive figures here.
   */
  readonly brokerInclusive: readonly ProfileFrame[];
}

function origin(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  // The bench's compiled copy of src/ lives under node_modules/.cache: it is the broker, not a package.
  // Grouped by module directory: src/server/http/, src/tools/cli/ (a tree from before the split: src/http/).
  const built = /token-broker-bench\/out(?:-[^/]+)?\/src\/((?:server\/|tools\/)?[^/]+)/.exec(url);
  if (built?.[1] !== undefined) return `broker ${built[1].endsWith('.js') ? built[1] : `${built[1]}/`}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return `npm ${pkg[1]}`;
  const src = /\/(src|bench|test)\/(.+)$/.exec(url);
  if (src?.[1] === 'src') return `broker ${/^(?:(?:server|tools)\/)?[^/]+/.exec(src[2] ?? '')?.[0] ?? ''}/`;
  return url;
}

function shortUrl(url: string): string {
  const built = /token-broker-bench\/out(?:-[^/]+)?\/(.+)$/.exec(url);
  if (built?.[1] !== undefined) return built[1];
  const pkg = /node_modules\/(.+)$/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  const src = /\/((?:src|bench|test)\/.+)$/.exec(url);
  return src?.[1] ?? url;
}

/** Self time per frame (function, file, line), from the sample stream; percentages of busy time. */
export function summarizeCpuProfile(path: string, limit = 25, requests?: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] ?? -1;
    const delta = profile.timeDeltas[i] ?? 0;
    totalUs += delta;
    self.set(id, (self.get(id) ?? 0) + delta);
  }
  const frames = new Map<string, number>();
  const origins = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)') {
      idleUs += us;
      continue;
    }
    const name = frameName(node);
    frames.set(name, (frames.get(name) ?? 0) + us);
    const where = origin(url, functionName);
    origins.set(where, (origins.get(where) ?? 0) + us);
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  const inclusive = inclusiveBrokerTime(profile, byId, self);
  const rank = (entries: Map<string, number>, n: number): ProfileFrame[] =>
    [...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), selfPercent: Math.round((us / busyUs) * 1000) / 10 }));
  return {
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    ...(requests !== undefined && requests > 0 && { requests, busyUsPerRequest: Math.round(busyUs / requests) }),
    top: rank(frames, limit),
    byOrigin: rank(origins, 20),
    brokerInclusive: rank(inclusive, limit),
  };
}

function frameName(node: CpuProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return url === '' ? functionName || '(anonymous)' : `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
}

/** Inclusive time of every broker frame: each sample's time goes to every distinct broker frame on its stack. */
function inclusiveBrokerTime(profile: CpuProfile, byId: ReadonlyMap<number, CpuProfileNode>, self: ReadonlyMap<number, number>): Map<string, number> {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const leaf = byId.get(id);
    if (leaf === undefined || leaf.callFrame.functionName === '(idle)' || leaf.callFrame.functionName === '(program)') continue;
    const counted = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const node = byId.get(current);
      if (node === undefined || !origin(node.callFrame.url, node.callFrame.functionName).startsWith('broker ')) continue;
      const name = frameName(node);
      if (counted.has(name)) continue;
      counted.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  return inclusive;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: tsx bench/profile-summary.ts FILE.cpuprofile [N]');
    process.exitCode = 2;
  } else {
    const summary = summarizeCpuProfile(file, Number(process.argv[3] ?? '25'));
    console.log(`${summary.busyMs} ms busy of ${summary.totalMs} ms sampled`);
    for (const f of summary.top) console.log(`${f.selfPercent.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(6)} ms  ${f.name}`);
    console.log('\nby origin:');
    for (const f of summary.byOrigin) console.log(`${f.selfPercent.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(6)} ms  ${f.name}`);
    console.log('\nbroker frames by inclusive time:');
    for (const f of summary.brokerInclusive) console.log(`${f.selfPercent.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(6)} ms  ${f.name}`);
  }
}
