import { pathToFileURL } from 'node:url';
import { LINT_RULES, type RuleId, type Severity } from './lint-rules.js';
import type { FileReport } from './lint-text.js';

/**
 * SARIF 2.1.0 for GitHub code scanning (github/codeql-action upload-sarif): one run, the rule catalogue as
 * tool.driver.rules (id, name, descriptions, help, default level, security-severity), and one result per
 * finding with ruleId, ruleIndex, level, message and a physical location whose artifact URI is relative to
 * SRCROOT (`uriBaseId`), the root of the repository the linter ran in, which the run names in
 * `originalUriBaseIds` (GitHub resolves such URIs against the checkout), and whose region has startLine and
 * startColumn. Columns count UTF-16 code units, as JavaScript strings do; the run says so (columnKind).
 */

export const SARIF_SCHEMA_URI = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
export const TOOL_NAME = 'token-broker lint';
/** The base every artifact URI is relative to: the repository root, as code-scanning tools name it. */
export const SOURCE_ROOT_ID = 'SRCROOT';

interface SarifMessage {
  readonly text: string;
}

interface SarifRule {
  readonly id: RuleId;
  readonly name: string;
  readonly shortDescription: SarifMessage;
  readonly fullDescription: SarifMessage;
  readonly help: SarifMessage;
  readonly defaultConfiguration: { readonly level: Severity };
  readonly properties: { readonly tags: readonly string[]; readonly precision: string; readonly 'security-severity': string };
}

interface SarifResult {
  readonly ruleId: RuleId;
  readonly ruleIndex: number;
  readonly level: Severity;
  readonly message: SarifMessage;
  readonly locations: readonly {
    readonly physicalLocation: {
      readonly artifactLocation: { readonly uri: string; readonly uriBaseId: typeof SOURCE_ROOT_ID };
      readonly region: { readonly startLine: number; readonly startColumn: number };
    };
  }[];
}

export interface SarifLog {
  readonly $schema: string;
  readonly version: '2.1.0';
  readonly runs: readonly {
    readonly tool: { readonly driver: { readonly name: string; readonly rules: readonly SarifRule[] } };
    readonly columnKind: 'utf16CodeUnits';
    readonly originalUriBaseIds?: { readonly [SOURCE_ROOT_ID]: { readonly uri: string } };
    readonly results: readonly SarifResult[];
  }[];
}

/** A relative path as a URI reference: forward slashes, each segment percent-encoded. */
export function relativeUri(path: string): string {
  return path
    .split(/[\\/]/)
    .map((segment) => (segment === '.' || segment === '..' ? segment : encodeURIComponent(segment)))
    .join('/');
}

/**
 * The SARIF log of a lint run. Each report's `paths.source` must be relative to the source root; `sourceRoot`
 * (an absolute directory) is written as SRCROOT's file URI when given.
 */
export function buildSarifLog(reports: readonly FileReport[], sourceRoot?: string): SarifLog {
  const rules: SarifRule[] = LINT_RULES.map((rule) => ({
    id: rule.id,
    name: rule.name,
    shortDescription: { text: rule.summary },
    fullDescription: { text: rule.summary },
    help: { text: rule.help },
    defaultConfiguration: { level: rule.severity },
    properties: {
      tags: rule.id === 'invalid-yaml' ? ['correctness'] : ['security', 'argo-workflows'],
      // Literal shapes and mount checks rarely misfire; name- and flow-based heuristics can.
      precision: rule.id === 'secret-named-literal' || rule.id === 'broker-token-read-once' || rule.id === 'secret-credential-to-gateway' ? 'medium' : 'high',
      'security-severity': rule.securitySeverity,
    },
  }));
  const results: SarifResult[] = reports.flatMap((report) =>
    report.findings.map((finding) => ({
      ruleId: finding.ruleId,
      ruleIndex: LINT_RULES.findIndex((rule) => rule.id === finding.ruleId),
      level: finding.severity,
      message: { text: `${finding.message} Fix: ${finding.fix}` },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: relativeUri(report.paths.source), uriBaseId: SOURCE_ROOT_ID },
            region: { startLine: finding.line, startColumn: finding.column },
          },
        },
      ],
    })),
  );
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: TOOL_NAME, rules } },
        columnKind: 'utf16CodeUnits',
        // SARIF wants the base URI to end with a slash, so relative URIs resolve inside it.
        ...(sourceRoot !== undefined && { originalUriBaseIds: { [SOURCE_ROOT_ID]: { uri: `${pathToFileURL(sourceRoot).href.replace(/\/?$/, '/')}` } } }),
        results,
      },
    ],
  };
}

/** The SARIF log as the CLI prints it. */
export function renderSarif(reports: readonly FileReport[], sourceRoot?: string): string {
  return `${JSON.stringify(buildSarifLog(reports, sourceRoot), null, 2)}\n`;
}
