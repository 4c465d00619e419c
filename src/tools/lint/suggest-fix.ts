import { isDeepStrictEqual } from 'node:util';
import { isMap, isPair, isScalar, isSeq, parseAllDocuments, Scalar, stringify, visit, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import type { YamlPath } from './argo-model.js';
import type { FixPlan, ScalarReplacement, StructuralEdit } from './fix-plan.js';
import { locateInScalar } from './source-map.js';

/**
 * Applies a fix plan to a file's text by splicing: each structural edit becomes a text edit of the few bytes it
 * changes (new list items and keys are rendered by yaml's stringify at the indentation of their neighbours), so
 * comments, quoting, key order and blank lines elsewhere stay byte-for-byte as they were. The result is then
 * checked: it must parse, and every document must equal what yaml's Document API gives for the same edits. A plan
 * that cannot be realised that way yields no suggestion rather than a wrong one.
 */

interface TextEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** Nesting depth of what is edited: of two insertions at one offset, the deeper goes first. */
  readonly depth: number;
}

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

function columnOf(text: string, offset: number): number {
  return offset - lineStart(text, offset);
}

/** Where new lines go after a block node that ends at `end`: the start of the next line. */
function insertionPoint(text: string, end: number): number {
  if (end === 0 || text[end - 1] === '\n') return end;
  const newline = text.indexOf('\n', end);
  return newline < 0 ? text.length : newline + 1;
}

/**
 * Lines inserted at `at`, ending as the file's lines end (CRLF files stay CRLF), with a line break first when `at`
 * is the end of a file that lacks one.
 */
function linesAt(text: string, at: number, lines: readonly string[]): string {
  const newline = text.includes('\r\n') ? '\r\n' : '\n';
  const body = lines.map((line) => `${line}${newline}`).join('');
  return at === text.length && text.length > 0 && !text.endsWith('\n') ? `${newline}${body}` : body;
}

function blockLines(value: unknown, indentSeq: boolean): string[] {
  return stringify(value, { indentSeq, lineWidth: 0 }).replace(/\n$/, '').split('\n');
}

function flowText(value: unknown): string {
  return stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

/** True when a document indents block sequences under their key (`key:\n  - a`), as most Argo examples do. */
function detectIndentSeq(document: Document, text: string): boolean {
  let found: boolean | undefined;
  visit(document, {
    Pair(_, pair) {
      const { key, value } = pair;
      if (!isSeq(value) || value.flow === true || !isScalar(key) || key.range === undefined || key.range === null) return undefined;
      const first = value.items[0];
      if (!isScalar(first) && !isMap(first) && !isSeq(first)) return undefined;
      const dash = text.lastIndexOf('-', (first.range?.[0] ?? 0) - 1);
      found = columnOf(text, dash) > columnOf(text, key.range[0]);
      return visit.BREAK;
    },
  });
  return found ?? true;
}

function nodeAt(document: Document, path: YamlPath): unknown {
  return path.length === 0 ? document.contents : document.getIn(path, true);
}

function realiseAppend(text: string, seq: YAMLSeq, value: unknown, indentSeq: boolean, depth: number): TextEdit | undefined {
  const range = seq.range;
  if (range === undefined || range === null) return undefined;
  if (seq.flow === true) {
    const closing = range[1] - 1;
    if (text[closing] !== ']') return undefined;
    return { start: closing, end: closing, text: `${seq.items.length > 0 ? ', ' : ''}${flowText(value)}`, depth };
  }
  const first = seq.items[0] as { range?: [number, number, number] | null } | undefined;
  const firstStart = first?.range?.[0];
  if (firstStart === undefined) return undefined;
  const dash = text.lastIndexOf('-', firstStart - 1);
  if (dash < lineStart(text, firstStart)) return undefined;
  const indent = ' '.repeat(columnOf(text, dash));
  const [head = '', ...rest] = blockLines(value, indentSeq);
  const at = insertionPoint(text, range[1]);
  return { start: at, end: at, text: linesAt(text, at, [`${indent}- ${head}`, ...rest.map((line) => `${indent}  ${line}`)]), depth };
}

function realiseAddKey(text: string, map: YAMLMap, key: string, value: unknown, indentSeq: boolean, depth: number): TextEdit | undefined {
  const range = map.range;
  if (range === undefined || range === null) return undefined;
  if (map.flow === true) {
    const closing = range[1] - 1;
    if (text[closing] !== '}') return undefined;
    const pair = flowText({ [key]: value }).replace(/^\{\s*/, '').replace(/\s*\}$/, '');
    return { start: closing, end: closing, text: `${map.items.length > 0 ? ', ' : ''}${pair}`, depth };
  }
  const firstKey = map.items[0]?.key as { range?: [number, number, number] | null } | undefined;
  const keyStart = firstKey?.range?.[0];
  if (keyStart === undefined) return undefined;
  const indent = ' '.repeat(columnOf(text, keyStart));
  const at = insertionPoint(text, range[1]);
  return { start: at, end: at, text: linesAt(text, at, blockLines({ [key]: value }, indentSeq).map((line) => `${indent}${line}`)), depth };
}

/** A scalar written in place of another on the same line: plain when yaml would write it plainly and it is safe in flow context, else JSON (valid YAML double-quoted). */
function inlineScalar(value: string): string {
  const plain = stringify(value, { lineWidth: 0 }).replace(/\n$/, '');
  return plain.includes('\n') || /[,[\]{}#"']|: /.test(plain) || plain !== value ? JSON.stringify(value) : plain;
}

function realiseSetScalar(scalar: Scalar, value: string, depth: number): TextEdit | undefined {
  const range = scalar.range;
  if (range === undefined || range === null || scalar.type === Scalar.BLOCK_LITERAL || scalar.type === Scalar.BLOCK_FOLDED) return undefined;
  return { start: range[0], end: range[1], text: inlineScalar(value), depth };
}

function replacedValue(value: string, replacements: readonly ScalarReplacement[]): string {
  let result = value;
  for (const replacement of [...replacements].sort((a, b) => b.index - a.index)) {
    result = result.slice(0, replacement.index) + replacement.text + result.slice(replacement.index + replacement.length);
  }
  return result;
}

function realiseReplaceInScalar(text: string, scalar: Scalar, replacements: readonly ScalarReplacement[], depth: number): TextEdit[] | undefined {
  const range = scalar.range;
  if (range === undefined || range === null || typeof scalar.value !== 'string') return undefined;
  const value = scalar.value;
  if (scalar.type === Scalar.PLAIN || scalar.type === undefined) {
    return [{ start: range[0], end: range[1], text: JSON.stringify(replacedValue(value, replacements)), depth }];
  }
  const escape =
    scalar.type === Scalar.QUOTE_DOUBLE
      ? (raw: string) => raw.replace(/\\/g, '\\\\').replace(/"/g, '\\"')
      : scalar.type === Scalar.QUOTE_SINGLE
        ? (raw: string) => raw.replace(/'/g, "''")
        : (raw: string) => raw;
  const edits: TextEdit[] = [];
  for (const replacement of replacements) {
    if (replacement.text.includes('\n')) return undefined;
    const at = locateInScalar(text, scalar, value, replacement.index, replacement.length);
    if (at === undefined) return undefined;
    edits.push({ start: at, end: at + replacement.length, text: escape(replacement.text), depth });
  }
  return edits;
}

function realiseRemoveItem(text: string, document: Document, path: YamlPath, seq: YAMLSeq, index: number, depth: number): TextEdit | undefined {
  const item = seq.items[index] as { range?: [number, number, number] | null } | undefined;
  const itemRange = item?.range;
  const seqRange = seq.range;
  if (itemRange === undefined || itemRange === null || seqRange === undefined || seqRange === null) return undefined;
  if (seq.flow === true) {
    if (seq.items.length === 1) return { start: seqRange[0], end: seqRange[1], text: '[]', depth };
    const next = (seq.items[index + 1] as { range?: [number, number, number] | null } | undefined)?.range;
    const previous = (seq.items[index - 1] as { range?: [number, number, number] | null } | undefined)?.range;
    if (next !== undefined && next !== null) return { start: itemRange[0], end: next[0], text: '', depth };
    if (previous !== undefined && previous !== null) return { start: previous[1], end: itemRange[1], text: '', depth };
    return undefined;
  }
  if (seq.items.length === 1) {
    // The only item: remove the whole `key:` pair, when the key starts its line.
    const parent = nodeAt(document, path.slice(0, -1));
    const pair = isMap(parent) ? parent.items.find((candidate) => isScalar(candidate.key) && candidate.key.value === path.at(-1)) : undefined;
    const keyStart = isPair(pair) && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
    if (keyStart === undefined || text.slice(lineStart(text, keyStart), keyStart).trim() !== '') return undefined;
    return { start: lineStart(text, keyStart), end: insertionPoint(text, seqRange[1]), text: '', depth };
  }
  let start = lineStart(text, itemRange[0]);
  if (!/^\s*-\s*$/.test(text.slice(start, itemRange[0]))) return undefined;
  // Comment lines right above the item describe it: they go with it.
  while (start > 0) {
    const previous = lineStart(text, start - 1);
    if (!/^\s*#/.test(text.slice(previous, start))) break;
    start = previous;
  }
  const next = (seq.items[index + 1] as { range?: [number, number, number] | null } | undefined)?.range;
  const end = next !== undefined && next !== null ? lineStart(text, next[0]) : insertionPoint(text, seqRange[1]);
  return { start, end, text: '', depth };
}

function realise(text: string, document: Document, edit: StructuralEdit, indentSeq: boolean): TextEdit[] | undefined {
  const node = nodeAt(document, edit.path);
  const depth = edit.path.length;
  switch (edit.op) {
    case 'append': {
      if (!isSeq(node)) return undefined;
      const done = realiseAppend(text, node, edit.value, indentSeq, depth);
      return done === undefined ? undefined : [done];
    }
    case 'add-key': {
      if (!isMap(node) || node.has(edit.key)) return undefined;
      const done = realiseAddKey(text, node, edit.key, edit.value, indentSeq, depth);
      return done === undefined ? undefined : [done];
    }
    case 'set-scalar': {
      if (!isScalar(node)) return undefined;
      const done = realiseSetScalar(node, edit.value, depth);
      return done === undefined ? undefined : [done];
    }
    case 'replace-in-scalar':
      return isScalar(node) ? realiseReplaceInScalar(text, node, edit.replacements, depth) : undefined;
    case 'remove-item': {
      if (!isSeq(node)) return undefined;
      const done = realiseRemoveItem(text, document, edit.path, node, edit.index, depth);
      return done === undefined ? undefined : [done];
    }
  }
}

/** The same edits through yaml's Document API: the reference the spliced text must agree with. */
function applyToDocument(document: Document, edits: readonly StructuralEdit[]): unknown {
  const copy = document.clone();
  for (const edit of edits) {
    switch (edit.op) {
      case 'append':
        copy.addIn(edit.path, edit.value);
        break;
      case 'add-key':
        copy.setIn([...edit.path, edit.key], edit.value);
        break;
      case 'set-scalar':
        copy.setIn(edit.path, edit.value);
        break;
      case 'replace-in-scalar': {
        const value = copy.getIn(edit.path);
        copy.setIn(edit.path, replacedValue(typeof value === 'string' ? value : '', edit.replacements));
        break;
      }
      case 'remove-item': {
        const seq = copy.getIn(edit.path, true);
        if (isSeq(seq) && seq.flow !== true && seq.items.length === 1) copy.deleteIn(edit.path);
        else copy.deleteIn([...edit.path, edit.index]);
        break;
      }
    }
  }
  return copy.toJS();
}

function splice(text: string, edits: readonly TextEdit[]): string | undefined {
  const ordered = [...edits].sort((a, b) => a.start - b.start || b.depth - a.depth);
  let result = '';
  let cursor = 0;
  // Insertions at the end of a file without a final line break each start with one; only the first may.
  let endBroken = false;
  for (const edit of ordered) {
    if (edit.start < cursor) return undefined; // overlapping edits: refuse rather than guess
    let inserted = edit.text;
    if (edit.start === text.length && !text.endsWith('\n')) {
      if (endBroken) inserted = inserted.replace(/^\r?\n/, '');
      endBroken = endBroken || /^\r?\n/.test(edit.text);
    }
    result += text.slice(cursor, edit.start) + inserted;
    cursor = edit.end;
  }
  return result + text.slice(cursor);
}

/**
 * The file text with `plan` applied to document `documentIndex`, or undefined when the plan cannot be applied by
 * splicing or the result would not be what the plan means.
 */
export function applyFixPlan(text: string, documents: readonly Document[], documentIndex: number, plan: FixPlan): string | undefined {
  const document = documents[documentIndex];
  if (document === undefined || plan.edits.length === 0) return undefined;
  const indentSeq = detectIndentSeq(document, text);
  const edits: TextEdit[] = [];
  for (const edit of plan.edits) {
    const realised = realise(text, document, edit, indentSeq);
    if (realised === undefined) return undefined;
    edits.push(...realised);
  }
  const result = splice(text, edits);
  if (result === undefined || result === text) return undefined;

  const reparsed = parseAllDocuments(result);
  if (!Array.isArray(reparsed) || reparsed.length !== documents.length) return undefined;
  if (reparsed.some((parsed) => parsed.errors.length > 0)) return undefined;
  const expected = documents.map((original, index) => (index === documentIndex ? applyToDocument(original, plan.edits) : original.toJS()));
  return reparsed.every((parsed, index) => isDeepStrictEqual(parsed.toJS(), expected[index])) ? result : undefined;
}
