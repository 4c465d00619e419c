import { SEVERITY_RANK, type Severity } from './lint-rules.js';
import type { FileReport, LintFinding } from './lint-text.js';

/** Totals over every linted file. */
export interface LintSummary {
  readonly files: number;
  readonly documents: number;
  readonly error: number;
  readonly warning: number;
  readonly note: number;
}

/** Every finding of every file, in file order. */
export function allFindings(reports: readonly FileReport[]): LintFinding[] {
  return reports.flatMap((report) => report.findings);
}

/** The totals the summary line and the JSON output show. */
export function summarise(reports: readonly FileReport[]): LintSummary {
  const count = (severity: Severity): number => allFindings(reports).filter((finding) => finding.severity === severity).length;
  return {
    files: reports.length,
    documents: reports.reduce((sum, report) => sum + report.documents, 0),
    error: count('error'),
    warning: count('warning'),
    note: count('note'),
  };
}

/** True when some finding is at or above the --fail-on threshold. */
export function failsAt(reports: readonly FileReport[], threshold: Severity): boolean {
  return allFindings(reports).some((finding) => SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[threshold]);
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/**
 * Human output: `file:line:column: severity [rule] message`, the fix on the next line, then (with --suggest) the
 * diff, unindented so it can be copied into `git apply`; a summary line last.
 */
export function renderText(reports: readonly FileReport[]): string {
  const lines: string[] = [];
  for (const finding of allFindings(reports)) {
    lines.push(`${finding.file}:${finding.line}:${finding.column}: ${finding.severity} [${finding.ruleId}] ${finding.message}`);
    lines.push(`    fix: ${finding.fix}`);
    if (finding.suggestion !== undefined) lines.push(finding.suggestion.replace(/\n$/, ''));
  }
  const summary = summarise(reports);
  const scope = `in ${plural(summary.files, 'file')} (${plural(summary.documents, 'Argo document')} checked)`;
  const total = summary.error + summary.warning + summary.note;
  if (total === 0) {
    lines.push(`No problems ${scope}.`);
  } else {
    const parts = [plural(summary.error, 'error'), plural(summary.warning, 'warning'), plural(summary.note, 'note')];
    lines.push(`${plural(total, 'problem')} (${parts.join(', ')}) ${scope}.`);
  }
  return `${lines.join('\n')}\n`;
}

/** Machine output: every finding with its position, rule, severity, message, fix and (with --suggest) diff. */
export function renderJson(reports: readonly FileReport[]): string {
  const findings = allFindings(reports).map((finding) => ({
    file: finding.file,
    line: finding.line,
    column: finding.column,
    ruleId: finding.ruleId,
    severity: finding.severity,
    message: finding.message,
    fix: finding.fix,
    ...(finding.template === undefined ? {} : { template: finding.template }),
    ...(finding.suggestion === undefined ? {} : { suggestion: finding.suggestion }),
  }));
  return `${JSON.stringify({ findings, summary: summarise(reports) }, null, 2)}\n`;
}
