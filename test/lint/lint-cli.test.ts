import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lint } from '../../src/tools/cli/lint.js';
import { runCli, type CliRun } from '../support/cli-run.js';
import { FIXTURE_CREDENTIALS, FIXTURES_DIR, FIXTURE_JWT, REPO_ROOT } from './lint-fixtures.js';

// `token-broker lint` as a user runs it. Most cases call the command in-process with its output captured (the
// machine has two cores; a child process per case would be slow); a few run the real process through main.ts
// (runCli) to prove the dispatch, the exit status and that errors never surface as stack traces. Those runs'
// output goes to the suite's log-leak check: none of them uses --suggest, whose diffs repeat the lines they change.

const FIXTURES = 'test/fixtures/argo-lint';

/** `token-broker lint ...args` in this process, from `cwd`. */
async function runLint(args: readonly string[], cwd = REPO_ROOT): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await lint(args, { cwd, out: (text) => (stdout += text), err: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

describe('token-broker lint', () => {
  let scratch = '';

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'token-broker-lint-'));
  });

  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('exits 0 and says so when a directory is clean', async () => {
    const run = await runLint([`${FIXTURES}/clean`]);
    assert.deepEqual(run, { code: 0, stdout: 'No problems in 6 files (6 Argo documents checked).\n', stderr: '' });
  });

  it('exits 1 with file:line:column, severity, rule, message and fix (the real process)', async () => {
    const run = await runCli(['lint', `${FIXTURES}/static-jwt-script.yaml`, `${FIXTURES}/broker-read-once.yaml`]);
    assert.deepEqual(run, {
      code: 1,
      stdout: [
        `${FIXTURES}/static-jwt-script.yaml:24:46: error [literal-jwt] A JWT is written into the script source of template "call-api".`,
        '    fix: Mount a projected service-account token and exchange it at the broker for each call instead (--suggest shows the change).',
        `${FIXTURES}/broker-read-once.yaml:20:11: warning [broker-token-read-once] Template "replay" keeps the projected token in SUBJECT and still uses it after the loop on script line 3: it expires while the step runs.`,
        '    fix: Read the token file and exchange it for each call (inside the loop), not once at the top of the script.',
        '2 problems (1 error, 1 warning, 0 notes) in 2 files (2 Argo documents checked).',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  it('--fail-on sets the threshold', async () => {
    const file = `${FIXTURES}/broker-read-once.yaml`;
    const codes: (number | null)[] = [];
    for (const extra of [[], ['--fail-on', 'error'], ['--fail-on', 'warning'], ['--fail-on', 'note']]) codes.push((await runLint([file, ...extra])).code);
    assert.deepEqual(codes, [0, 0, 1, 1]);
  });

  it('--format json and --format sarif print one document each', async () => {
    const json = await runLint(['--format', 'json', `${FIXTURES}/http-templates.yaml`]);
    assert.equal(json.code, 1);
    const parsed = JSON.parse(json.stdout) as { findings: { ruleId: string; line: number; column: number; file: string }[]; summary: unknown };
    assert.deepEqual(parsed.summary, { files: 1, documents: 1, error: 3, warning: 1, note: 0 });
    assert.deepEqual(parsed.findings[0], {
      file: `${FIXTURES}/http-templates.yaml`,
      line: 23,
      column: 28,
      ruleId: 'literal-jwt',
      severity: 'error',
      message: 'A JWT is written into HTTP header Authorization of template "status".',
      fix: 'Move the call into a container step that exchanges a projected service-account token at the broker (HTTP templates cannot mount one).',
      template: 'status',
    });
    const sarif = await runLint(['--format=sarif', `${FIXTURES}/clean`]);
    assert.equal(sarif.code, 0);
    const log = JSON.parse(sarif.stdout) as { version: string; runs: { results: unknown[] }[] };
    assert.deepEqual([log.version, log.runs.length, log.runs[0]?.results], ['2.1.0', 1, []]);
  });

  it('reports a file that is not YAML with its line, exit 2, and no stack trace (the real process)', async () => {
    const run = await runCli(['lint', `${FIXTURES}/invalid`, `${FIXTURES}/clean/cron.yaml`]);
    assert.deepEqual(run, {
      code: 2,
      stdout: [
        `${FIXTURES}/invalid/not-yaml.yaml:7:5: error [invalid-yaml] Not valid YAML: Block collections are not allowed within flow collections.`,
        '    fix: Fix the syntax error at the reported line. Templated manifests (Helm, Jsonnet) must be rendered before linting.',
        `${FIXTURES}/invalid/tabs.yml:4:1: error [invalid-yaml] Not valid YAML: Tabs are not allowed as indentation.`,
        '    fix: Fix the syntax error at the reported line. Templated manifests (Helm, Jsonnet) must be rendered before linting.',
        '2 problems (2 errors, 0 warnings, 0 notes) in 3 files (1 Argo document checked).',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  it('exits 2 on usage errors and unreadable paths, with the reason', async () => {
    const runs: CliRun[] = [];
    for (const args of [
      ['--format', 'xml', FIXTURES],
      ['--fail-on', 'fatal', FIXTURES],
      ['--broker-url', 'token-broker:8080', FIXTURES],
      ['--audience', '', FIXTURES],
      ['--verbose', FIXTURES],
      [`${FIXTURES}/missing.yaml`],
    ]) {
      runs.push(await runLint(args));
    }
    assert.deepEqual(
      // Node's own hint after an unknown option differs between versions: only its first sentence is compared.
      runs.map((run) => [run.code, run.stdout, run.stderr.split('\n')[0]?.replace(/\. To specify .*$/, '.')]),
      [
        [2, '', 'token-broker lint: --format must be text, json or sarif, got "xml"'],
        [2, '', 'token-broker lint: --fail-on must be error, warning or note, got "fatal"'],
        [2, '', 'token-broker lint: --broker-url must be an http(s) URL, got "token-broker:8080"'],
        [2, '', 'token-broker lint: --audience is empty'],
        [2, '', "token-broker lint: Unknown option '--verbose'."],
        [2, '', `token-broker lint: cannot read ${FIXTURES}/missing.yaml (ENOENT)`],
      ],
    );
    assert.equal(runs[0]?.stderr.includes('Usage: token-broker lint [PATH...] [options]'), true);
  });

  it('--suggest prints a unified diff and never rewrites the file', async () => {
    const file = join(FIXTURES_DIR, 'static-jwt-script.yaml');
    const before = { text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs };
    const run = await runLint(['--suggest', `${FIXTURES}/static-jwt-script.yaml`]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^--- a\/test\/fixtures\/argo-lint\/static-jwt-script\.yaml\n\+\+\+ b\/test\/fixtures\/argo-lint\/static-jwt-script\.yaml\n@@ -21,7 \+21,19 @@\n/m);
    assert.equal(run.stdout.includes(`-          curl -sf -H "Authorization: Bearer ${FIXTURE_JWT}" \\\n`), true);
    assert.deepEqual({ text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs }, before);
  });

  it('walks directories recursively for *.yaml and *.yml, skipping hidden directories and node_modules', async () => {
    const root = join(scratch, 'walk');
    for (const dir of ['a/b', '.hidden', 'node_modules/pkg']) mkdirSync(join(root, dir), { recursive: true });
    const fixture = readFileSync(join(FIXTURES_DIR, 'broker-default-token.yaml'), 'utf8');
    for (const path of ['a/b/deep.yml', 'a/top.yaml', 'z.YAML', '.hidden/skipped.yaml', 'node_modules/pkg/skipped.yaml']) writeFileSync(join(root, path), fixture);
    writeFileSync(join(root, 'notes.txt'), fixture);
    const run = await runLint(['--format', 'json', root]);
    const parsed = JSON.parse(run.stdout) as { findings: { file: string }[]; summary: { files: number } };
    assert.deepEqual(
      [run.code, parsed.summary.files, parsed.findings.map((finding) => finding.file.slice(finding.file.indexOf('walk/')))],
      [1, 3, ['walk/a/b/deep.yml', 'walk/a/top.yaml', 'walk/z.YAML']],
    );
  });

  it('lints the working directory when no path is given, with paths relative to it', async () => {
    const root = join(scratch, 'cwd');
    mkdirSync(join(root, 'workflows'), { recursive: true });
    cpSync(join(FIXTURES_DIR, 'tyk-key-env.yaml'), join(root, 'workflows', 'export.yaml'));
    const run = await runLint(['--format', 'sarif'], root);
    const log = JSON.parse(run.stdout) as { runs: { results: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
    assert.equal(run.code, 1);
    assert.deepEqual(log.runs[0]?.results.map((result) => result.locations[0]?.physicalLocation.artifactLocation.uri), ['workflows/export.yaml']);
  });

  it('prints no credential it found (without --suggest)', async () => {
    const runs: CliRun[] = [];
    for (const format of ['text', 'json', 'sarif']) runs.push(await runLint(['--format', format, FIXTURES]));
    for (const run of runs) {
      assert.equal(run.code, 2); // invalid/ holds files that are not YAML
      assert.deepEqual(FIXTURE_CREDENTIALS.filter((credential) => run.stdout.includes(credential) || run.stderr.includes(credential)), []);
    }
  });

  it('is listed in token-broker help and answers --help', async () => {
    const help = await runLint(['--help']);
    assert.equal(help.code, 0);
    assert.equal(help.stdout.startsWith('Usage: token-broker lint [PATH...] [options]'), true);
    const main = (await runCli(['help'])).stdout;
    assert.match(main, /^ {2}lint \[PATH\.\.\.\] \[--format text\|json\|sarif\] \[--audience AUD\] \[--broker-url URL\] \[--fail-on error\|warning\|note\] \[--suggest\]$/m);
  });
});
