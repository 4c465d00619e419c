/**
 * A deny: an operator's order that an identity (or one issued token) gets nothing from the broker until a given
 * time. A pure value, the same whether it came from the configuration, Redis, the CLI or the admin endpoint. Pure
 * code: no I/O here.
 */

/** The identity facets a deny can name. Every facet given must match; at least one is given. */
export const DENY_FACETS = ['issuer', 'namespace', 'serviceAccount', 'workflow', 'jti'] as const;
export type DenyFacet = (typeof DENY_FACETS)[number];

export type DenyMatch = Partial<Readonly<Record<DenyFacet, string>>>;

export interface Deny {
  /** Stable id, for `deny remove` and in every record of the deny's hits. */
  readonly id: string;
  readonly match: DenyMatch;
  /** Unix time in milliseconds after which the deny refuses nothing; undefined: until removed (static denies only). */
  readonly until: number | undefined;
  /** Echoed to the refused client and to logs: bounded and printable (see sanitizeReason). */
  readonly reason: string;
  readonly createdAt: number;
  readonly createdBy: string;
}

/** The longest a deny added at run time may last: a forgotten incident deny must not refuse forever. */
export const MAX_DENY_DURATION_MS = 30 * 24 * 3600 * 1000;
export const MAX_REASON_LENGTH = 200;
/** Longest facet value: the longest Kubernetes name (253) plus room for a URL-shaped issuer name. */
export const MAX_FACET_LENGTH = 253;
/** Bound on the denies in force at once (static and shared): each exchange scans them in memory. */
export const MAX_DENIES = 1000;

const DURATION = /^([1-9][0-9]{0,6})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `30m`, `2h`, `7d` (also `90s`) to milliseconds; undefined when malformed, zero or longer than 30 days. */
export function parseDenyDuration(text: string): number | undefined {
  const found = DURATION.exec(text);
  if (found === null) return undefined;
  const ms = Number(found[1]) * UNIT_MS[found[2] as keyof typeof UNIT_MS];
  return ms <= MAX_DENY_DURATION_MS ? ms : undefined;
}

/**
 * The reason as clients and logs will see it: control characters (newlines, escapes, bidi overrides) become
 * spaces, runs of spaces one space, trimmed, at most MAX_REASON_LENGTH characters. A reason cannot forge a log
 * line or a header, or smuggle a terminal escape into an operator's shell.
 */
export function sanitizeReason(text: string): string {
  const printable = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ').replace(/\s+/g, ' ').trim();
  return [...printable].slice(0, MAX_REASON_LENGTH).join('');
}

/**
 * A facet value as written: exact text, no glob. It must be printable and without spaces; `*` is an ordinary
 * character, so a deny that looks like a glob matches only that literal name (which no Kubernetes name is).
 */
export function isDenyFacetValue(value: string): boolean {
  return value.length >= 1 && value.length <= MAX_FACET_LENGTH && /^[\x21-\x7e]+$/.test(value);
}

export type DenyProblem = { readonly field: string; readonly message: string };

export type DenyParse = { readonly ok: true; readonly deny: Deny } | { readonly ok: false; readonly problems: readonly DenyProblem[] };

/** A deny id: what `deny remove ID` takes; generated ids are UUIDs. */
export function isDenyId(value: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The match facets of an untrusted object: exact, printable values, at least one, no unknown keys. */
export function parseDenyMatch(value: unknown, problems: DenyProblem[], field = 'match'): DenyMatch {
  const record = asRecord(value);
  if (record === undefined) {
    problems.push({ field, message: 'must be an object of facets' });
    return {};
  }
  const match: Partial<Record<DenyFacet, string>> = {};
  for (const [key, facetValue] of Object.entries(record)) {
    if (!(DENY_FACETS as readonly string[]).includes(key)) {
      problems.push({ field: `${field}.${key.slice(0, 40)}`, message: `unknown facet; one of ${DENY_FACETS.join(', ')}` });
    } else if (facetValue === undefined) {
      continue;
    } else if (typeof facetValue !== 'string' || !isDenyFacetValue(facetValue)) {
      problems.push({ field: `${field}.${key}`, message: `must be an exact name of 1 to ${MAX_FACET_LENGTH} printable characters, without spaces` });
    } else {
      match[key as DenyFacet] = facetValue;
    }
  }
  if (Object.keys(match).length === 0 && problems.length === 0) problems.push({ field, message: `name at least one of ${DENY_FACETS.join(', ')}` });
  return match;
}

/**
 * Reads a stored deny back (a Redis entry, an admin request already turned into a deny): anything that is not
 * exactly a deny is refused, so a malformed entry can never match everything.
 */
export function parseStoredDeny(value: unknown): DenyParse {
  const problems: DenyProblem[] = [];
  const record = asRecord(value);
  if (record === undefined) return { ok: false, problems: [{ field: '(root)', message: 'not an object' }] };
  const { id, until, reason, createdAt, createdBy } = record;
  if (typeof id !== 'string' || !isDenyId(id)) problems.push({ field: 'id', message: 'missing or malformed' });
  const match = parseDenyMatch(record.match, problems);
  if (until !== undefined && !(typeof until === 'number' && Number.isSafeInteger(until))) problems.push({ field: 'until', message: 'must be a Unix time in ms' });
  if (typeof reason !== 'string' || reason !== sanitizeReason(reason) || reason === '') problems.push({ field: 'reason', message: 'missing or not printable' });
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt)) problems.push({ field: 'createdAt', message: 'must be a Unix time in ms' });
  if (typeof createdBy !== 'string' || createdBy !== sanitizeReason(createdBy)) problems.push({ field: 'createdBy', message: 'not printable' });
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    deny: { id: id as string, match, until: until as number | undefined, reason: reason as string, createdAt: createdAt as number, createdBy: createdBy as string },
  };
}

/** What an operator asks for (CLI flags, the admin endpoint's JSON body): facets, a duration, a reason. */
export interface DenyRequest {
  readonly match: unknown;
  readonly until: unknown;
  readonly reason: unknown;
}

/**
 * An operator's request turned into a deny expiring `until` (a DURATION) from `now`. The reason is sanitized, not
 * refused: an incident is no time to argue about punctuation; it must still say something.
 */
export function denyFromRequest(request: DenyRequest, context: { readonly id: string; readonly now: number; readonly createdBy: string }): DenyParse {
  const problems: DenyProblem[] = [];
  const match = parseDenyMatch(request.match, problems);
  let until: number | undefined;
  if (typeof request.until !== 'string') problems.push({ field: 'until', message: 'required: a duration such as 30m, 2h or 7d (at most 30d)' });
  else {
    const ms = parseDenyDuration(request.until);
    if (ms === undefined) problems.push({ field: 'until', message: 'must be a duration such as 30m, 2h or 7d (at most 30d)' });
    else until = context.now + ms;
  }
  const reason = typeof request.reason === 'string' ? sanitizeReason(request.reason) : '';
  if (reason === '') problems.push({ field: 'reason', message: `required: printable text of at most ${MAX_REASON_LENGTH} characters` });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, deny: { id: context.id, match, until, reason, createdAt: context.now, createdBy: sanitizeReason(context.createdBy) } };
}

/** The facets a deny names, in a fixed order, joined with `+`: a bounded label (at most 31 values) for metrics. */
export function denyKind(deny: Deny): string {
  return DENY_FACETS.filter((facet) => deny.match[facet] !== undefined).join('+');
}
