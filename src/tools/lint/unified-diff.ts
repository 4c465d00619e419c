/**
 * A unified diff (`diff -u` / `git diff` format) of two versions of one file, applicable with `git apply` or
 * `patch -p1`. Lines are compared by a longest-common-subsequence table over the part between the common prefix
 * and suffix, which for the small edits of a suggested fix is a handful of lines.
 */

const NO_NEWLINE = '\\ No newline at end of file';
/** Above this many table cells the middle is shown as removed then added, rather than aligned. */
const MAX_TABLE_CELLS = 4_000_000;

interface Line {
  readonly text: string;
  /** False for a last line without a line break. */
  readonly newline: boolean;
}

function splitLines(text: string): Line[] {
  if (text === '') return [];
  const parts = text.split('\n');
  const endsWithNewline = parts.at(-1) === '';
  if (endsWithNewline) parts.pop();
  return parts.map((part, index) => ({ text: part, newline: endsWithNewline || index < parts.length - 1 }));
}

function sameLine(a: Line, b: Line): boolean {
  return a.text === b.text && a.newline === b.newline;
}

type Op = { readonly kind: ' ' | '-' | '+'; readonly line: Line };

/** The edit script turning `before` into `after`. */
function editScript(before: readonly Line[], after: readonly Line[]): Op[] {
  let prefix = 0;
  while (prefix < before.length && prefix < after.length && sameLine(before[prefix] as Line, after[prefix] as Line)) prefix += 1;
  let suffix = 0;
  while (
    suffix < before.length - prefix &&
    suffix < after.length - prefix &&
    sameLine(before[before.length - 1 - suffix] as Line, after[after.length - 1 - suffix] as Line)
  ) {
    suffix += 1;
  }
  const oldMiddle = before.slice(prefix, before.length - suffix);
  const newMiddle = after.slice(prefix, after.length - suffix);
  const ops: Op[] = before.slice(0, prefix).map((line) => ({ kind: ' ', line }));
  const n = oldMiddle.length;
  const m = newMiddle.length;
  if ((n + 1) * (m + 1) > MAX_TABLE_CELLS) {
    ops.push(...oldMiddle.map((line) => ({ kind: '-' as const, line })), ...newMiddle.map((line) => ({ kind: '+' as const, line })));
  } else {
    // lcs[i * (m + 1) + j]: length of the LCS of oldMiddle[i..] and newMiddle[j..].
    const lcs = new Uint32Array((n + 1) * (m + 1));
    for (let i = n - 1; i >= 0; i -= 1) {
      for (let j = m - 1; j >= 0; j -= 1) {
        lcs[i * (m + 1) + j] = sameLine(oldMiddle[i] as Line, newMiddle[j] as Line)
          ? (lcs[(i + 1) * (m + 1) + j + 1] ?? 0) + 1
          : Math.max(lcs[(i + 1) * (m + 1) + j] ?? 0, lcs[i * (m + 1) + j + 1] ?? 0);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && sameLine(oldMiddle[i] as Line, newMiddle[j] as Line)) {
        ops.push({ kind: ' ', line: oldMiddle[i] as Line });
        i += 1;
        j += 1;
      } else if (i < n && (j === m || (lcs[(i + 1) * (m + 1) + j] ?? 0) >= (lcs[i * (m + 1) + j + 1] ?? 0))) {
        // Removals before additions, as diff -u writes a changed line.
        ops.push({ kind: '-', line: oldMiddle[i] as Line });
        i += 1;
      } else {
        ops.push({ kind: '+', line: newMiddle[j] as Line });
        j += 1;
      }
    }
  }
  ops.push(...before.slice(before.length - suffix).map((line) => ({ kind: ' ' as const, line })));
  return ops;
}

function rangeHeader(start: number, length: number): string {
  // diff -u numbers an empty range by the line before it.
  return length === 0 ? `${start},0` : length === 1 ? `${start + 1}` : `${start + 1},${length}`;
}

/** The unified diff from `before` to `after`, labelled a/`path` and b/`path`; empty when they are equal. */
export function unifiedDiff(before: string, after: string, path: string, context = 3): string {
  const ops = editScript(splitLines(before), splitLines(after));
  const changed = ops.map((op, index) => (op.kind === ' ' ? -1 : index)).filter((index) => index >= 0);
  if (changed.length === 0) return '';

  // Group changes whose context would touch into one hunk.
  const hunks: { from: number; to: number }[] = [];
  for (const index of changed) {
    const last = hunks.at(-1);
    if (last !== undefined && index - last.to <= 2 * context + 1) last.to = index;
    else hunks.push({ from: index, to: index });
  }

  const out = [`--- a/${path}`, `+++ b/${path}`];
  // Line numbers before each op, in the old and the new file.
  const oldBefore: number[] = [];
  const newBefore: number[] = [];
  let oldLine = 0;
  let newLine = 0;
  for (const op of ops) {
    oldBefore.push(oldLine);
    newBefore.push(newLine);
    if (op.kind !== '+') oldLine += 1;
    if (op.kind !== '-') newLine += 1;
  }
  for (const hunk of hunks) {
    const from = Math.max(0, hunk.from - context);
    const to = Math.min(ops.length - 1, hunk.to + context);
    const slice = ops.slice(from, to + 1);
    const oldLength = slice.filter((op) => op.kind !== '+').length;
    const newLength = slice.filter((op) => op.kind !== '-').length;
    out.push(`@@ -${rangeHeader(oldBefore[from] ?? 0, oldLength)} +${rangeHeader(newBefore[from] ?? 0, newLength)} @@`);
    for (const op of slice) {
      out.push(`${op.kind}${op.line.text}`);
      if (!op.line.newline) out.push(NO_NEWLINE);
    }
  }
  return `${out.join('\n')}\n`;
}
