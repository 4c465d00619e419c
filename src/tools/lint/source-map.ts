import { Scalar } from 'yaml';

/**
 * From a position in a scalar's parsed value to a position in the file. Block scalars drop indentation, quoted
 * scalars decode escapes and fold lines, so value offsets are not file offsets. The needles the linter locates
 * (tokens, keys, `$VAR` references, paths) contain no quote, escape or line break, so they appear verbatim in the
 * source: the k-th occurrence in the value is the k-th occurrence in the node's source text.
 */

/** Where a scalar's content starts in the file: after the header line of a block scalar, else the node start. */
function contentStart(text: string, node: Scalar): number {
  const start = node.range?.[0] ?? 0;
  if (node.type !== Scalar.BLOCK_LITERAL && node.type !== Scalar.BLOCK_FOLDED) return start;
  const newline = text.indexOf('\n', start);
  return newline < 0 ? start : newline + 1;
}

function occurrencesBefore(haystack: string, needle: string, end: number): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at >= 0 && at < end; at = haystack.indexOf(needle, at + needle.length)) count += 1;
  return count;
}

function nthOccurrence(haystack: string, needle: string, n: number): number {
  let at = haystack.indexOf(needle);
  for (let seen = 0; at >= 0 && seen < n; seen += 1) at = haystack.indexOf(needle, at + needle.length);
  return at;
}

/**
 * The file offset of `value.slice(index, index + length)`, or undefined when it cannot be located verbatim (the
 * caller then points at the node itself rather than guess).
 */
export function locateInScalar(text: string, node: Scalar, value: string, index: number, length: number): number | undefined {
  const needle = value.slice(index, index + length);
  if (needle === '' || needle.includes('\n')) return undefined;
  const start = contentStart(text, node);
  const end = node.range?.[1] ?? text.length;
  const at = nthOccurrence(text.slice(start, end), needle, occurrencesBefore(value, needle, index));
  return at < 0 ? undefined : start + at;
}

/** The file offset of a node's start. */
export function nodeStart(node: { range?: readonly [number, number, number] | null }): number {
  return node.range?.[0] ?? 0;
}
