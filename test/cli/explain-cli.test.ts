import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, runCli } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';

const EXAMPLE_CONFIG = 'config/broker.example.yaml';
const FIXTURES = 'test/fixtures/identities';
const IN_CLUSTER = 'https://kubernetes.default.svc.cluster.local';

/** A JWT-shaped token nobody signed: the offline explain never checks signatures. */
function unsignedToken(claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'RS256', kid: 'k' })}.${encode(claims)}.c2lnbmF0dXJl`;
}

function projectedClaims(namespace: string, serviceAccount: string, iss = IN_CLUSTER): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: ['tyk-token-broker'],
    exp: now + 600,
    iat: now,
    nbf: now,
    iss,
    jti: '2f6b0c1e-0000-4000-8000-000000000001',
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    'kubernetes.io': {
      namespace,
      pod: { name: 'orders-sync-x7k2p-call-api-3149217812', uid: '0d8b260e-0000-4000-8000-000000000001' },
      serviceaccount: { name: serviceAccount, uid: 'e6a8680e-0000-4000-8000-000000000001' },
    },
  };
}

const scratch = useScratchDir('explain-cli-');
let grantedToken: string;
let deniedToken: string;
let foreignToken: string;

before(async () => {
  grantedToken = await scratch.write('granted.jwt', `${unsignedToken(projectedClaims('payments', 'argo-workflow-runner'))}\n`);
  deniedToken = await scratch.write('denied.jwt', unsignedToken(projectedClaims('payments', 'default')));
  foreignToken = await scratch.write('foreign.jwt', unsignedToken(projectedClaims('payments', 'argo-workflow-runner', 'https://elsewhere.example')));
});

describe('token-broker explain --identity', () => {
  it('text: a granted fixture exits 0 with every rule, the policies and the claims', async () => {
    const { code, stdout, stderr } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', `${FIXTURES}/payments-runner.yaml`]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '');
    const lines = stdout.split('\n');
    assert.equal(lines[0], '*** IDENTITY FIXTURE: not a token. Labels and pod state are what the fixture says. ***');
    for (const expected of [
      '  workflow         orders-sync-x7k2p',
      '  MATCH    payments-argo-read-write             [admin]',
      '  no match payments-settlement-ledger           [submitter]: claim /kubernetes.io/pod/name = "orders-sync-x7k2p-call-api-3149217812" does not match "nightly-settlement-*"',
      '  no match team-read                            [admin]: namespace labels: label environment=production required, found "staging"',
      '  MATCH    payments-workflows-may-request-write [submitter]',
      'Outcome: GRANTED',
      '  policies         payments-read payments-write',
      '  ttl              300s',
      '      "jti": "(generated at exchange)",',
    ]) {
      assert.ok(lines.includes(expected), `missing line ${JSON.stringify(expected)} in\n${stdout}`);
    }
  });

  it('json: the explanation object; a scope may ask for a requestable policy', async () => {
    const { code, stdout } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', `${FIXTURES}/team-analytics.yaml`, '--format', 'json', '--scope', 'analytics-read analytics-audit-read']);
    assert.equal(code, 0);
    const explanation = JSON.parse(stdout) as { verification: string; granted: string[]; requestable: string[]; request: unknown; outcome: { decision: string; policies: string[]; claims: Record<string, unknown> } };
    assert.equal(explanation.verification, 'identity fixture');
    assert.deepEqual([explanation.granted, explanation.requestable], [['analytics-read'], ['analytics-audit-read']]);
    assert.deepEqual(explanation.request, { scope: ['analytics-read', 'analytics-audit-read'], audience: 'tyk' });
    assert.deepEqual(explanation.outcome.policies, ['analytics-read', 'analytics-audit-read']);
    assert.equal(explanation.outcome.claims.scope, 'analytics-read analytics-audit-read');
  });

  it('denied exits 1: no matching rule, and a refusal before the rules (a completed step)', async () => {
    const [none, completed] = await Promise.all([
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', `${FIXTURES}/default-service-account.yaml`]),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', `${FIXTURES}/completed-step.yaml`, '--format', 'json']),
    ]);
    assert.equal(none.code, 1);
    assert.ok(none.stdout.includes('\nOutcome: DENIED (no_matching_rule)\n  description      No policy is granted to this workload identity.\n'), none.stdout);
    assert.equal(completed.code, 1);
    assert.deepEqual(JSON.parse(completed.stdout), {
      verification: 'identity fixture',
      outcome: { decision: 'denied', reason: 'workflow_completed', description: 'The Argo step this subject token was issued to has completed.' },
      notes: [],
    });
  });

  it('an invalid fixture is an input error (exit 2) naming the field', async () => {
    const bad = await scratch.write('bad-fixture.yaml', 'issuer: in-cluster\nnamespace: payments\nserviceAcount: runner\n');
    const { code, stdout, stderr } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', bad]);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(
      stderr,
      `token-broker explain: ${bad}: invalid identity fixture\n  serviceAcount: unknown key\n  serviceAccount: required (or give the full token claims under claims)\n`,
    );
  });
});

describe('token-broker explain --token (offline, unverified)', () => {
  it('text: says loudly that nothing was verified, explains, exits 0 when granted', async () => {
    const { code, stdout } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', grantedToken]);
    assert.equal(code, 0);
    const lines = stdout.split('\n');
    assert.equal(lines[0], '*** unverified: decoded offline. NOBODY CHECKED THIS TOKEN: not its signature, its pod or its labels. ***');
    assert.ok(lines.includes('  issuer           in-cluster (https://kubernetes.default.svc.cluster.local)'));
    assert.ok(lines.includes('  policies         payments-read payments-write'));
    assert.ok(
      lines.includes('  - unverified: decoded offline. The signature, issuer keys, pod binding and Kubernetes labels were NOT checked; POST /token checks them all.'),
    );
  });

  it('json: "unverified: decoded offline" in the document and on stderr; a denial exits 1', async () => {
    const { code, stdout, stderr } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', deniedToken, '--format', 'json']);
    assert.equal(code, 1);
    assert.match(stderr, /^token-broker explain: unverified: decoded offline\./);
    const explanation = JSON.parse(stdout) as { verification: string; identity: { serviceAccount: string }; outcome: unknown };
    assert.equal(explanation.verification, 'unverified: decoded offline');
    assert.equal(explanation.identity.serviceAccount, 'default');
    assert.deepEqual(explanation.outcome, { decision: 'denied', reason: 'no_matching_rule', description: 'No policy is granted to this workload identity.' });
  });

  it('the issuer is found by exact iss: an unknown one is refused (exit 1); scope and audience are applied', async () => {
    const [foreign, scope, audience] = await Promise.all([
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', foreignToken]),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', grantedToken, '--scope', 'ledger-write', '--format', 'json']),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', grantedToken, '--audience', 'billing', '--format', 'json']),
    ]);
    assert.equal(foreign.code, 1);
    assert.ok(foreign.stdout.includes('Outcome: DENIED (unknown_issuer) before any rule was applied'), foreign.stdout);
    assert.equal(scope.code, 1);
    assert.equal((JSON.parse(scope.stdout) as { outcome: { reason: string } }).outcome.reason, 'scope_not_granted');
    assert.equal(audience.code, 1);
    assert.equal((JSON.parse(audience.stdout) as { outcome: { reason: string } }).outcome.reason, 'audience_not_allowed');
  });
});

describe('token-broker explain --token: time is judged as POST /token judges it', () => {
  it('an expired token is DENIED (expired) and exits 1, not granted with a note', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await scratch.write('expired.jwt', unsignedToken({ ...projectedClaims('payments', 'argo-workflow-runner'), iat: now - 4500, nbf: now - 4500, exp: now - 900 }));
    const [text, json] = await Promise.all([
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', expired]),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', expired, '--format', 'json']),
    ]);
    assert.equal(text.code, 1, text.stdout);
    assert.ok(text.stdout.includes('Outcome: DENIED (expired) before any rule was applied'), text.stdout);
    assert.ok(!text.stdout.includes('GRANTED'), text.stdout);
    assert.equal(json.code, 1);
    const outcome = (JSON.parse(json.stdout) as { outcome: { decision: string; reason: string; description: string } }).outcome;
    assert.deepEqual([outcome.decision, outcome.reason], ['denied', 'expired']);
    assert.match(outcome.description, /^The subject token expired 1[45]m( \d+s)? ago\. Its lifetime was 1h\./);
  });
});

describe('token-broker explain: usage and configuration errors', () => {
  it('usage errors exit 2 with the reason and the usage', async () => {
    const runs = await Promise.all([
      runCli(['explain', '--identity', `${FIXTURES}/payments-runner.yaml`]),
      runCli(['explain', '--config', EXAMPLE_CONFIG]),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', grantedToken, '--identity', `${FIXTURES}/payments-runner.yaml`]),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', grantedToken, '--format', 'yaml']),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', grantedToken, '--verbose']),
    ]);
    const reasons = ['--config is required', 'give exactly one of --token and --identity', 'give exactly one of --token and --identity', '--format must be text or json, got "yaml"'];
    for (const [i, run] of runs.entries()) {
      assert.equal(run.code, 2, `run ${i}`);
      assert.equal(run.stdout, '');
      assert.ok(run.stderr.includes('Usage: token-broker explain --config FILE (--token FILE | --identity FILE) [options]'), `run ${i}: usage`);
      if (reasons[i] !== undefined) assert.ok(run.stderr.startsWith(`token-broker explain: ${reasons[i]}\n`), `run ${i}: ${run.stderr}`);
    }
    assert.match(runs[4]?.stderr ?? '', /^token-broker explain: Unknown option '--verbose'/);
  });

  it('an unreadable token file exits 2', async () => {
    const missing = scratch.file('missing.jwt');
    const { code, stderr } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--token', missing]);
    assert.equal(code, 2);
    assert.equal(stderr, `token-broker explain: cannot read the token file ${missing} (ENOENT)\n`);
  });

  it('an invalid configuration exits 1 with every problem, as check-config prints them', async () => {
    const config = await scratch.write('bad-config.yaml', 'server: {publicUrl: https://broker.example}\nissuers: []\nrules: []\nsurprise: 1\n');
    const { code, stdout, stderr } = await runCli(['explain', '--config', config, '--token', grantedToken]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    const check = await runCli(['check-config', config]);
    assert.equal(check.code, 1);
    assert.equal(stderr, check.stderr);
    assert.match(stderr, /^ {2}surprise: unknown key$/m);
  });
});

/** What payments-read + payments-write open in the example's policies block, merged as Tyk merges them. */
const RUNNER_ROUTES = 'orders: may GET|HEAD|PUT|PATCH|DELETE /orders/v1/orders/{id}$, GET|POST /orders/v1/orders$; may not OPTIONS';

describe('token-broker test-rules', () => {
  it('the example cases pass against the example configuration: exit 0, one PASS line per case', async () => {
    const { code, stdout, stderr } = await runCli(['test-rules', '--config', EXAMPLE_CONFIG, 'config/broker.example.cases.yaml']);
    assert.equal(code, 0, stdout + stderr);
    assert.equal(stderr, '');
    const lines = stdout.trimEnd().split('\n');
    // Each granted case is followed by the routes its policies open (indented), from the policies block.
    const results = lines.slice(0, -2).filter((line) => !line.startsWith('        '));
    assert.ok(results.length >= 10);
    assert.ok(lines.some((line) => line.startsWith('        orders: may ')), stdout);
    assert.ok(results.every((line) => line.startsWith('PASS  ')), stdout);
    assert.deepEqual(lines.slice(-2), ['', `${results.length} passed, 0 failed`]);
  });

  it('a failing case exits 1 and says what differed; fixture files are read relative to the cases file', async () => {
    await mkdir(scratch.file('identities'), { recursive: true });
    await copyFile(join(REPO_ROOT, FIXTURES, 'payments-runner.yaml'), scratch.file('identities', 'runner.yaml'));
    const cases = await scratch.write('failing.cases.yaml', [
      'cases:',
      '  - name: runner reads only',
      '    identity: {file: identities/runner.yaml}',
      '    expect: {policies: [payments-read, ledger-write]}',
      '  - name: default is denied',
      '    identity: {issuer: in-cluster, namespace: payments, serviceAccount: default, pod: p}',
      '    expect: {denied: no_matching_rule}',
      '  - name: runner is denied',
      '    identity: {issuer: in-cluster, namespace: payments, serviceAccount: argo-workflow-runner, pod: p}',
      '    expect: {denied: scope_not_granted}',
      '',
    ]);
    const { code, stdout, stderr } = await runCli(['test-rules', '--config', EXAMPLE_CONFIG, cases]);
    assert.equal(code, 1, stderr);
    assert.equal(
      stdout,
      [
        'FAIL  runner reads only: expected policies [payments-read ledger-write], got granted [payments-read payments-write]: missing ledger-write; unexpected payments-write; matched rules: payments-argo-read-write, payments-workflows-may-request-write',
        `        ${RUNNER_ROUTES}`,
        'PASS  default is denied',
        'FAIL  runner is denied: expected denied scope_not_granted, got granted [payments-read payments-write]; matched rules: payments-argo-read-write',
        `        ${RUNNER_ROUTES}`,
        '',
        '1 passed, 2 failed',
        '',
      ].join('\n'),
    );
  });

  it('usage, unreadable or invalid cases exit 2', async () => {
    const invalid = await scratch.write('invalid.cases.yaml', 'cases:\n  - name: x\n    identity: {issuer: nowhere, namespace: a, serviceAccount: b}\n    expect: {policies: [a]}\n');
    const missingFixture = await scratch.write('missing-fixture.cases.yaml', 'cases:\n  - name: x\n    identity: {file: nope.yaml}\n    expect: {policies: [a]}\n');
    const [usage, extra, unreadable, unknownIssuer, noFixture] = await Promise.all([
      runCli(['test-rules', '--config', EXAMPLE_CONFIG]),
      runCli(['test-rules', '--config', EXAMPLE_CONFIG, 'a.yaml', 'b.yaml']),
      runCli(['test-rules', '--config', EXAMPLE_CONFIG, scratch.file('absent.yaml')]),
      runCli(['test-rules', '--config', EXAMPLE_CONFIG, invalid]),
      runCli(['test-rules', '--config', EXAMPLE_CONFIG, missingFixture]),
    ]);
    for (const run of [usage, extra]) {
      assert.equal(run.code, 2);
      assert.ok(run.stderr.startsWith('token-broker test-rules: give --config FILE and exactly one CASES.yaml\n\nUsage: token-broker test-rules'), run.stderr);
    }
    assert.equal(unreadable.code, 2);
    assert.equal(unreadable.stderr, `token-broker test-rules: cannot read the cases file ${scratch.file('absent.yaml')} (ENOENT)\n`);
    assert.equal(unknownIssuer.code, 2);
    assert.equal(
      unknownIssuer.stderr,
      `token-broker test-rules: ${invalid}: invalid cases file\n  cases[0].identity.issuer: no issuer is named "nowhere" in the configuration (issuers: in-cluster, eks-prod)\n`,
    );
    assert.equal(noFixture.code, 2);
    assert.equal(noFixture.stderr, `token-broker test-rules: case "x": cannot read the identity fixture ${scratch.file('nope.yaml')} (ENOENT)\n`);
    assert.equal(unknownIssuer.stdout + noFixture.stdout, '');
  });
});
