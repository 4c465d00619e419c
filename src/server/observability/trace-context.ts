import type { IncomingHttpHeaders } from 'node:http';

/**
 * The W3C Trace Context (https://www.w3.org/TR/trace-context/) a caller sent with POST /token: the trace the
 * exchange joins. Parsed strictly, because the trace id is written into the exchange log line and the audit record:
 * a header that is not exactly the W3C format is ignored as a whole, never echoed, never partly used.
 */
export interface IncomingTraceContext {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** The caller's span (16 lowercase hex digits, not all zero): the parent of the exchange span. */
  readonly parentSpanId: string;
  /** The trace-flags byte; bit 0 is `sampled`. */
  readonly traceFlags: number;
  /** The `tracestate` header when it is well-formed (kept for the span's parent, never logged). */
  readonly traceState: string | undefined;
}

/** version "-" trace-id "-" parent-id "-" trace-flags, the version 00 layout; later versions extend it after a "-". */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** A future version may append fields; nothing legitimate needs more than this, and the regex never sees more. */
const MAX_TRACEPARENT_LENGTH = 256;

/** tracestate: at most 32 list members, 512 characters in all (the limits the W3C lets a receiver enforce). */
const MAX_TRACESTATE_LENGTH = 512;
const MAX_TRACESTATE_MEMBERS = 32;
/** key = simple-key / multi-tenant-key; value = printable ASCII except "," and "=", not ending in a space. */
const TRACESTATE_MEMBER = /^(?:[a-z][a-z0-9_*/-]{0,255}|[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * The trace context of a `traceparent` header value, or undefined unless it is valid per W3C Trace Context:
 * lowercase hex, version 00 exactly 55 characters, a later version (not ff) at least that and "-" after the flags,
 * neither id all zeros. Duplicate headers (which Node joins with ", ") are invalid, as the W3C says.
 */
export function parseTraceParent(value: string | string[] | undefined): Omit<IncomingTraceContext, 'traceState'> | undefined {
  if (typeof value !== 'string' || value.length < 55 || value.length > MAX_TRACEPARENT_LENGTH) return undefined;
  const match = TRACEPARENT.exec(value);
  if (match === null) return undefined;
  const [, version, traceId, parentSpanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  if (traceId === ZERO_TRACE_ID || parentSpanId === ZERO_SPAN_ID) return undefined;
  return { traceId, parentSpanId, traceFlags: Number.parseInt(flags, 16) };
}

/** A `tracestate` header value when every list member is well-formed and within the limits; otherwise undefined. */
export function parseTraceState(value: string | string[] | undefined): string | undefined {
  // Several tracestate headers may be combined (RFC 9110 list), which Node does with ", ": the same list.
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TRACESTATE_LENGTH) return undefined;
  const members = value.split(',');
  if (members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  const keys = new Set<string>();
  for (const raw of members) {
    const member = raw.trim();
    if (member === '') continue;
    if (!TRACESTATE_MEMBER.test(member)) return undefined;
    const key = member.slice(0, member.indexOf('='));
    if (keys.has(key)) return undefined;
    keys.add(key);
  }
  return keys.size === 0 ? undefined : value;
}

/** The trace context of a request's headers: undefined without a valid `traceparent` (tracestate alone means nothing). */
export function incomingTraceContext(headers: IncomingHttpHeaders): IncomingTraceContext | undefined {
  const header = headers.traceparent;
  // The common case, no header, costs one property read.
  if (header === undefined) return undefined;
  const parent = parseTraceParent(header);
  if (parent === undefined) return undefined;
  return { ...parent, traceState: parseTraceState(headers.tracestate) };
}
