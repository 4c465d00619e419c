import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { collectYamlFiles, UnreadablePathError } from '../lint/collect-files.js';
import type { Severity } from '../lint/lint-rules.js';
import { combinedFixDiff, lintText, type FileReport, type LintTextOptions } from '../lint/lint-text.js';
import { findRepositoryRoot } from '../lint/repository-root.js';
import { failsAt, renderJson, renderText } from '../lint/render-report.js';
import { renderSarif } from '../lint/sarif-log.js';

/** The broker's in-cluster address in the README; written into suggested exchanges when --broker-url is not given. */
export const DEFAULT_SUGGESTED_BROKER_URL = 'https://token-broker.platform.svc.cluster.local';
export const DEFAULT_AUDIENCE = 'tyk-token-broker';

export const LINT_USAGE = `Usage: token-broker lint [PATH...] [options]

  Checks Argo Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow manifests for static credentials
  and for steps that would fail at the broker. PATHs are files or directories (searched recursively for *.yaml and
  *.yml; default: the current directory); every document of a multi-document file is checked, other kinds are
  skipped. Files are never modified.

  --format text|json|sarif   Output format (default: text). sarif is SARIF 2.1.0 for GitHub code scanning.
  --audience AUD             The audience the broker accepts on subject tokens (default: ${DEFAULT_AUDIENCE}).
  --broker-url URL           The broker's URL: steps mentioning it call the broker, and suggested exchanges use it
                             (default for suggestions: ${DEFAULT_SUGGESTED_BROKER_URL}).
  --fail-on error|warning|note
                             Exit 1 when a finding is at least this severe (default: error).
  --suggest                  Also compute the mechanical fixes: mount a projected token and replace the literal
                             with a broker exchange. text: the findings go to stderr and one patch with every fix
                             to stdout, so "token-broker lint --suggest > fix.patch" then "git apply fix.patch" at
                             the repository root applies it (paths are relative to the root of the repository
                             holding each file). json: each fixable finding carries its own diff (suggestion).
                             A diff repeats the lines it changes, credential included: keep it out of shared logs.

Exit status: 0 no finding at or above --fail-on; 1 findings; 2 usage error, unreadable path or invalid YAML.`;

/** A command-line mistake: reported with the usage, exit status 2. */
class UsageError extends Error {}

interface LintOptions {
  readonly help: boolean;
  readonly paths: readonly string[];
  readonly format: 'text' | 'json' | 'sarif';
  readonly failOn: Severity;
  readonly settings: LintTextOptions;
}

function parseOptions(args: readonly string[]): LintOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        format: { type: 'string' },
        audience: { type: 'string' },
        'broker-url': { type: 'string' },
        'fail-on': { type: 'string' },
        suggest: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json' && format !== 'sarif') throw new UsageError(`--format must be text, json or sarif, got "${format}"`);
  const failOn = values['fail-on'] ?? 'error';
  if (failOn !== 'error' && failOn !== 'warning' && failOn !== 'note') throw new UsageError(`--fail-on must be error, warning or note, got "${failOn}"`);
  const audience = values.audience ?? DEFAULT_AUDIENCE;
  if (audience.trim() === '') throw new UsageError('--audience is empty');
  const brokerUrl = values['broker-url'];
  if (brokerUrl !== undefined && !/^https?:\/\/[^/\s]+/i.test(brokerUrl)) throw new UsageError(`--broker-url must be an http(s) URL, got "${brokerUrl}"`);
  return {
    help: values.help === true,
    paths: positionals.length === 0 ? ['.'] : positionals,
    format,
    failOn,
    settings: { audience, brokerUrl, suggestedBrokerUrl: brokerUrl ?? DEFAULT_SUGGESTED_BROKER_URL, suggest: values.suggest === true },
  };
}

/** Where the command reads relative paths from and writes its output; the process's by default, a test's in tests. */
export interface LintIo {
  readonly cwd: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

function processIo(): LintIo {
  return { cwd: process.cwd(), out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
}

/** How a file is named in the output: relative to the working directory (SARIF needs it), forward slashes. */
function displayPath(file: string, cwd: string): string {
  return relative(cwd, file).split('\\').join('/');
}

/**
 * `token-broker lint`: read the files, lint each one, print one report. Reading files is the only I/O; the rules
 * are pure (src/tools/lint). Exit 0 clean, 1 findings at or above --fail-on, 2 usage error, unreadable path or a file
 * that is not YAML (its findings are still printed).
 */
export async function lint(args: readonly string[], io: LintIo = processIo()): Promise<number> {
  let options: LintOptions;
  try {
    options = parseOptions(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`token-broker lint: ${error.message}\n\n${LINT_USAGE}\n`);
    return 2;
  }
  if (options.help) {
    io.out(`${LINT_USAGE}\n`);
    return 0;
  }
  let files: string[];
  try {
    files = await collectYamlFiles(options.paths.map((path) => resolve(io.cwd, path)));
  } catch (error) {
    if (!(error instanceof UnreadablePathError)) throw error;
    io.err(`token-broker lint: cannot read ${displayPath(error.path, io.cwd)} (${error.code})\n`);
    return 2;
  }
  const reports: FileReport[] = [];
  const patches: string[] = [];
  const patchByText = options.settings.suggest && options.format === 'text';
  const sourceRoot = (await findRepositoryRoot(io.cwd)) ?? io.cwd;
  let unreadable = false;
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      io.err(`token-broker lint: cannot read ${displayPath(file, io.cwd)} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})\n`);
      unreadable = true;
      continue;
    }
    // Diffs name the file from the root of its own repository (git apply refuses "../"); SARIF from SRCROOT.
    const patchRoot = (await findRepositoryRoot(dirname(file))) ?? sourceRoot;
    const paths = { patch: displayPath(file, patchRoot), source: displayPath(file, sourceRoot) };
    reports.push(lintText(text, displayPath(file, io.cwd), options.settings, paths));
    if (patchByText && options.settings.suggest) {
      const patch = combinedFixDiff(text, options.settings, paths.patch);
      if (patch !== undefined) patches.push(patch);
    }
  }
  if (patchByText) {
    // Findings for the human on stderr, the patch alone on stdout: `lint --suggest > fix.patch` works.
    io.err(renderText(reports.map((report) => ({ ...report, findings: report.findings.map((finding) => ({ ...finding, suggestion: undefined })) }))));
    io.out(patches.join(''));
  } else {
    io.out(options.format === 'json' ? renderJson(reports) : options.format === 'sarif' ? renderSarif(reports, sourceRoot) : renderText(reports));
  }
  if (unreadable || reports.some((report) => report.invalid)) return 2;
  return failsAt(reports, options.failOn) ? 1 : 0;
}
