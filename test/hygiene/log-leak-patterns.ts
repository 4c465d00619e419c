/**
 * What a leaked credential looks like in a log line. Shapes, not known values: the check must catch a token no
 * test knew about. Legitimate log content must not trigger it: SHA-256 digests and RFC 7638 kids (43 base64url
 * characters, one segment), UUIDs, host names and dotted versions (no JSON header).
 */

/** One credential-shaped match in a line. */
export interface LeakFinding {
  readonly kind: 'jwt' | 'tyk-key';
  /** Where in the line the credential starts. */
  readonly index: number;
  readonly length: number;
}

const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]*$/;

/** True when `segment` is base64url of a JSON object, as a JOSE header is. */
function isJsonObjectSegment(segment: string): boolean {
  if (segment.length < 4 || !BASE64URL_SEGMENT.test(segment)) return false;
  // "eyJ" is base64url of `{"`: every compact JWS/JWE the broker and its libraries produce starts so.
  if (segment.startsWith('eyJ')) return true;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

/**
 * Compact JWS/JWT (and the first three parts of a JWE): three dot-separated base64url segments whose first is a
 * JSON object. Each dotted run is split and every consecutive triple is tried, so a token glued to a host name
 * (`svc.local.eyJ...`) is still found; the signature may be empty (alg none).
 */
function findJwts(line: string): LeakFinding[] {
  const findings: LeakFinding[] = [];
  for (const run of line.matchAll(/[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,}/g)) {
    const segments = run[0].split('.');
    let offset = run.index;
    for (let i = 0; i + 2 < segments.length; ) {
      const [header = '', payload = '', signature = ''] = segments.slice(i, i + 3);
      if (payload.length > 0 && isJsonObjectSegment(header)) {
        const length = header.length + payload.length + signature.length + 2;
        findings.push({ kind: 'jwt', index: offset, length });
        // Past the whole token: a run may hold two (`jwt.jwt`), never report one twice.
        offset += length + 1;
        i += 3;
      } else {
        offset += header.length + 1;
        i += 1;
      }
    }
  }
  return findings;
}

/**
 * Tyk keys: the classic shape is the org id followed by 32 lowercase hex characters (what POST /tyk/keys/create
 * returns with hashed keys off, and what the stand-in Gateway mints); newer Gateways return base64 of
 * `{"org":…,"id":…,"h":…}`, which starts with `eyJvcmci`. A bare 32+ hex run is flagged too: the org id may be
 * empty, and no broker log line carries hex digests (digests there are base64url).
 */
const TYK_KEY_PATTERNS: readonly RegExp[] = [
  /(?<![A-Za-z0-9])[A-Za-z0-9]*[0-9a-f]{32}(?![A-Za-z0-9])/g,
  /eyJvcmci[A-Za-z0-9+/_-]*={0,2}/g,
];

/**
 * A W3C trace id is 32 lowercase hex characters too. The broker logs one only as the value of its `traceId` field
 * (the exchange line, the audit record) and the Argo step as `trace_id` in its receipt; those exact values, and only
 * those, are not Tyk keys. A key logged under any other name, or beside a trace id, is still found.
 */
const TRACE_ID_FIELD = /"(?:traceId|trace_id)":"[0-9a-f]{32}"/g;

function findTykKeys(line: string): LeakFinding[] {
  const findings: LeakFinding[] = [];
  // Same length, so every index found stays the index in the original line.
  const scanned = line.replace(TRACE_ID_FIELD, (field) => field.replace(/[0-9a-f]{32}/, '-'.repeat(32)));
  for (const pattern of TYK_KEY_PATTERNS) {
    for (const match of scanned.matchAll(pattern)) findings.push({ kind: 'tyk-key', index: match.index, length: match[0].length });
  }
  return findings;
}

/** Every credential-shaped string in one log line; empty when the line is clean. */
export function findLeaks(line: string): LeakFinding[] {
  return [...findJwts(line), ...findTykKeys(line)];
}

/** A finding described without repeating the credential: kind, position, length and its first characters. */
export function describeFinding(line: string, finding: LeakFinding): string {
  const start = line.slice(finding.index, finding.index + 6);
  return `${finding.kind} at column ${finding.index + 1}, ${finding.length} chars, starting "${start}…"`;
}
