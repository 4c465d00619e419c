import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DEFAULT_SUGGESTED_BROKER_URL } from '../../src/tools/cli/lint.js';
import { collectYamlFiles } from '../../src/tools/lint/collect-files.js';
import { lintText } from '../../src/tools/lint/lint-text.js';
import { DEFAULT_OPTIONS, REPO_ROOT } from './lint-fixtures.js';

// The project's own Argo examples must be what the linter asks for: no finding of any severity, whether or not
// the linter is told the broker's URL (which makes every mention of it a broker call). The test runs over
// whatever examples/argo/ holds and fails if it checked nothing.

describe('examples/argo', () => {
  for (const brokerUrl of [undefined, DEFAULT_SUGGESTED_BROKER_URL]) {
    it(`lints clean${brokerUrl === undefined ? '' : ` with --broker-url ${brokerUrl}`}`, async () => {
      const files = await collectYamlFiles([join(REPO_ROOT, 'examples/argo')]);
      const reports = await Promise.all(
        files.map(async (file) => lintText(await readFile(file, 'utf8'), relative(REPO_ROOT, file), { ...DEFAULT_OPTIONS, brokerUrl })),
      );
      assert.ok(reports.length >= 1, 'no YAML file under examples/argo');
      assert.ok(reports.reduce((sum, report) => sum + report.documents, 0) >= 1, 'no Argo document under examples/argo');
      assert.deepEqual(
        reports.flatMap((report) => report.findings.map((finding) => `${finding.file}:${finding.line}:${finding.column} ${finding.ruleId} ${finding.message}`)),
        [],
      );
    });
  }
});
