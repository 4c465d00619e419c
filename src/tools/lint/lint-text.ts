import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { readWorkflow } from './argo-model.js';
import { checkWorkflow, type LintSettings } from './check-workflow.js';
import { lintRule, type RuleId, type Severity } from './lint-rules.js';
import { applyFixPlan } from './suggest-fix.js';
import { unifiedDiff } from './unified-diff.js';

/** One finding, ready for any output format. */
export interface LintFinding {
  /** The file as the user named it (relative paths stay relative), with forward slashes. */
  readonly file: string;
  /** 1-based line and column (UTF-16 code units) in the file. */
  readonly line: number;
  readonly column: number;
  readonly ruleId: RuleId;
  readonly severity: Severity;
  readonly message: string;
  readonly fix: string;
  readonly template: string | undefined;
  /** With --suggest: a unified diff that fixes this finding, when the fix is mechanical. */
  readonly suggestion: string | undefined;
}

/** What linting one file found. */
export interface FileReport {
  readonly file: string;
  /** Where the file is for tools that apply or place results: relative to the repository root (see FilePaths). */
  readonly paths: FilePaths;
  /** Argo documents (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow) checked. */
  readonly documents: number;
  readonly findings: readonly LintFinding[];
  /** True when some document could not be parsed (exit status 2). */
  readonly invalid: boolean;
}

/**
 * How a file is named outside the human report. `git apply` and code scanning resolve paths against a
 * repository's root, and `git apply` refuses a path with `..`: so diffs name the file relative to the root of
 * the repository holding it, and SARIF relative to its SRCROOT (the repository the linter ran in).
 */
export interface FilePaths {
  /** The path written in suggested diffs (`--- a/PATH`). */
  readonly patch: string;
  /** The artifact URI's path in SARIF, relative to SRCROOT. */
  readonly source: string;
}

export interface LintTextOptions extends LintSettings {
  /** Compute a suggested diff for every mechanically fixable finding. */
  readonly suggest: boolean;
}

/** The first line of a yaml error message, without yaml's own "at line N, column M" (the finding has its position). */
function parseErrorMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * Lints the text of one file: every document of a multi-document stream, Argo kinds only. Positions come from
 * yaml's node ranges through a LineCounter; a document that does not parse is reported at the error's position
 * (rule invalid-yaml) and the other documents are still checked.
 */
export function lintText(text: string, file: string, options: LintTextOptions, paths: FilePaths = { patch: file, source: file }): FileReport {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter });
  const documents: Document[] = Array.isArray(parsed) ? parsed : [];
  const position = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const findings: LintFinding[] = [];
  let checked = 0;
  let invalid = false;
  documents.forEach((document, index) => {
    const error = document.errors[0];
    if (error !== undefined) {
      invalid = true;
      findings.push({
        file,
        ...position(error.pos[0]),
        ruleId: 'invalid-yaml',
        severity: lintRule('invalid-yaml').severity,
        message: `Not valid YAML: ${parseErrorMessage(error.message)}.`.replace(/\.\.$/, '.'),
        fix: lintRule('invalid-yaml').help,
        template: undefined,
        suggestion: undefined,
      });
      return;
    }
    const workflow = readWorkflow(document);
    if (workflow === undefined) return;
    checked += 1;
    for (const raw of checkWorkflow(workflow, text, options)) {
      const fixed = options.suggest && raw.plan !== undefined ? applyFixPlan(text, documents, index, raw.plan) : undefined;
      findings.push({
        file,
        ...position(raw.offset),
        ruleId: raw.ruleId,
        severity: lintRule(raw.ruleId).severity,
        message: raw.message,
        fix: raw.fix,
        template: raw.template,
        suggestion: fixed === undefined ? undefined : unifiedDiff(text, fixed, paths.patch),
      });
    }
  });
  return { file, paths, documents: checked, findings, invalid };
}

/** The text with the first mechanical fix that applies, or undefined when none does. */
function firstFix(text: string, settings: LintSettings): string | undefined {
  const parsed = parseAllDocuments(text);
  const documents: Document[] = Array.isArray(parsed) ? parsed : [];
  for (const [index, document] of documents.entries()) {
    if (document.errors.length > 0) return undefined;
    const workflow = readWorkflow(document);
    if (workflow === undefined) continue;
    for (const raw of checkWorkflow(workflow, text, settings)) {
      const fixed = raw.plan === undefined ? undefined : applyFixPlan(text, documents, index, raw.plan);
      if (fixed !== undefined && fixed !== text) return fixed;
    }
  }
  return undefined;
}

/** How many findings of a text carry a fix plan. */
function fixableCount(text: string, settings: LintSettings): number {
  const parsed = parseAllDocuments(text);
  const documents: Document[] = Array.isArray(parsed) ? parsed : [];
  return documents.reduce((sum, document) => {
    const workflow = document.errors.length === 0 ? readWorkflow(document) : undefined;
    return sum + (workflow === undefined ? 0 : checkWorkflow(workflow, text, settings).filter((raw) => raw.plan !== undefined).length);
  }, 0);
}

/**
 * One diff per file with every mechanical fix, for `lint --suggest > fix.patch`: the fixes are applied one at a
 * time, each to the text the previous one produced (the findings' own diffs each start from the original, so
 * two of them for one file would not apply together). Stops when no fix applies or one does not reduce the
 * number of fixable findings. Undefined when nothing changes.
 */
export function combinedFixDiff(text: string, settings: LintSettings, patchPath: string): string | undefined {
  let current = text;
  let remaining = fixableCount(text, settings);
  while (remaining > 0) {
    const next = firstFix(current, settings);
    if (next === undefined) break;
    const left = fixableCount(next, settings);
    if (left >= remaining) break;
    current = next;
    remaining = left;
  }
  return current === text ? undefined : unifiedDiff(text, current, patchPath);
}
