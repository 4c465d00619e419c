import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lint } from '../../src/tools/cli/lint.js';
import { FIXTURE_JWT, TYK_KEY } from './lint-fixtures.js';

// `lint --suggest > fix.patch` and `git apply fix.patch` as a user runs them, with real git in a scratch
// repository, linting from a subdirectory through a "../" path; and the SARIF paths code scanning resolves.

/** Why git cannot run here, or undefined when it can. With CI=true a missing git is a failure. */
function gitUnavailableReason(): string | undefined {
  if (spawnSync('git', ['--version']).status === 0) return undefined;
  if (process.env.CI === 'true') throw new Error('CI=true but git is not on PATH: .ci/run must install it');
  return 'git is not on PATH';
}

/** Two templates in one file, each with a mechanical fix: the patch must carry both, applicable together. */
const WORKFLOW = `apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: orders-sync-
spec:
  entrypoint: main
  templates:
    - name: call-api
      container:
        image: curlimages/curl:8.10.1
        command: [sh, -c]
        args: ['curl -sf -H "Authorization: Bearer ${FIXTURE_JWT}" https://gateway.example.com/orders/']
    - name: export
      container:
        image: curlimages/curl:8.10.1
        command: [sh, -c]
        args: ['curl -sf -H "Authorization: $TYK_API_KEY" https://gateway.example.com/ledger/export']
        env:
          - name: TYK_API_KEY
            value: ${TYK_KEY}
`;

async function runLint(args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await lint(args, { cwd, out: (text) => (stdout += text), err: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

const skip = gitUnavailableReason();

describe('lint --suggest and --format sarif in a real git repository', { skip }, () => {
  let repo = '';

  before(() => {
    repo = realpathSync(mkdtempSync(join(tmpdir(), 'token-broker-lint-git-')));
    mkdirSync(join(repo, 'wf'));
    mkdirSync(join(repo, 'tools'));
    writeFileSync(join(repo, 'wf', 'x.yaml'), WORKFLOW);
    execFileSync('git', ['init', '-q'], { cwd: repo });
  });

  after(() => rmSync(repo, { recursive: true, force: true }));

  it('from a subdirectory with ../wf/x.yaml: findings on stderr, one patch on stdout that git apply takes at the root', async () => {
    const run = await runLint(['--suggest', '../wf/x.yaml'], join(repo, 'tools'));
    assert.equal(run.code, 1);
    // stderr: the findings, named as the user named the file, and no diff.
    assert.match(run.stderr, /^\.\.\/wf\/x\.yaml:12:\d+: error \[literal-jwt\] /m);
    assert.match(run.stderr, /^\.\.\/wf\/x\.yaml:20:\d+: error \[literal-tyk-key\] /m);
    assert.doesNotMatch(run.stderr, /^(---|\+\+\+|@@) /m);
    // stdout: only the patch, the path relative to the repository root.
    assert.match(run.stdout, /^--- a\/wf\/x\.yaml\n\+\+\+ b\/wf\/x\.yaml\n@@ /);
    assert.equal(run.stdout.match(/^--- /gm)?.length, 1, 'one diff for the file, with both fixes');

    writeFileSync(join(repo, 'fix.patch'), run.stdout);
    execFileSync('git', ['apply', '--check', 'fix.patch'], { cwd: repo });
    execFileSync('git', ['apply', 'fix.patch'], { cwd: repo });
    const fixed = readFileSync(join(repo, 'wf', 'x.yaml'), 'utf8');
    assert.equal(fixed.includes(FIXTURE_JWT) || fixed.includes(TYK_KEY), false, 'both credentials are gone');
    assert.deepEqual(await runLint(['wf'], repo), { code: 0, stdout: 'No problems in 1 file (1 Argo document checked).\n', stderr: '' });
  });

  it('SARIF: artifact URIs relative to SRCROOT, the repository root, named in originalUriBaseIds', async () => {
    writeFileSync(join(repo, 'wf', 'y.yaml'), WORKFLOW);
    const run = await runLint(['--format', 'sarif', '../wf/y.yaml'], join(repo, 'tools'));
    assert.equal(run.code, 1);
    const sarif = JSON.parse(run.stdout) as {
      runs: { originalUriBaseIds: Record<string, { uri: string }>; results: { locations: { physicalLocation: { artifactLocation: { uri: string; uriBaseId: string } } }[] }[] }[];
    };
    const [sarifRun] = sarif.runs;
    assert.ok(sarifRun);
    assert.deepEqual(sarifRun.originalUriBaseIds, { SRCROOT: { uri: `${pathToFileURL(repo).href}/` } });
    assert.deepEqual(
      sarifRun.results.map((result) => result.locations[0]?.physicalLocation.artifactLocation),
      [
        { uri: 'wf/y.yaml', uriBaseId: 'SRCROOT' },
        { uri: 'wf/y.yaml', uriBaseId: 'SRCROOT' },
      ],
    );
  });
});
