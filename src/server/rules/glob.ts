/**
 * A compiled glob: `*` matches any run of characters (including none) except control characters; everything else
 * is literal. `payments-*` must not match `payments-\nadmin`: a value with a control character in it is never a
 * name an administrator meant (Kubernetes names cannot hold one), and a log line or template that shows it would
 * show two.
 */
export type GlobMatcher = (value: string) => boolean;

/**
 * Matches without regular expressions, in O(pattern x value) time at worst, so that a long claim value
 * checked against a pattern with many stars cannot stall the event loop.
 */
function matchSegments(segments: readonly string[], value: string): boolean {
  const first = segments[0] ?? '';
  const last = segments[segments.length - 1] ?? '';
  if (!value.startsWith(first)) return false;
  if (value.length - first.length < last.length || !value.endsWith(last)) return false;
  let position = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < segments.length - 1; i++) {
    const segment = segments[i] ?? '';
    const found = value.indexOf(segment, position);
    if (found === -1 || found + segment.length > end) return false;
    position = found + segment.length;
  }
  return true;
}

/** C0 controls, DEL and C1 controls. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Compiles a glob once, at configuration load, into an anchored matcher. */
export function compileGlob(pattern: string): GlobMatcher {
  if (!pattern.includes('*')) return (value) => value === pattern;
  if (/^\*+$/.test(pattern)) return (value) => !CONTROL_CHARACTER.test(value);
  const segments = pattern.split('*');
  return (value) => !CONTROL_CHARACTER.test(value) && matchSegments(segments, value);
}

/** Compiles a list of globs into one matcher that accepts a value matching any of them. */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  const matchers = patterns.map(compileGlob);
  return (value) => matchers.some((matches) => matches(value));
}
