import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';

const EXAMPLE_CONFIG = 'config/broker.example.yaml';
const RUNNER = 'test/fixtures/identities/payments-runner.yaml';
const scratch = useScratchDir('explain-resource-cli-');

// `token-broker explain --resource`: the exchange's own resource decision, offline, against the example's apis block.
describe('token-broker explain --resource', () => {
  it('a resource on an API the granted policies open: exit 0, those policies only', async () => {
    const { code, stdout } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', RUNNER, '--format', 'json', '--resource', 'HTTPS://Gateway.Example.com/orders/v1/orders']);
    assert.equal(code, 0);
    const explanation = JSON.parse(stdout);
    assert.deepEqual(explanation.request, { resource: 'https://gateway.example.com/orders/v1/orders', audience: 'tyk' });
    assert.deepEqual(explanation.outcome.policies, ['payments-read', 'payments-write']);
    assert.equal(explanation.outcome.claims.scope, 'payments-read payments-write');
  });

  it('an API none of them opens, and a URL no API is served at: exit 1 with the reason', async () => {
    const [ledger, unknown] = await Promise.all([
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', RUNNER, '--format', 'json', '--resource', 'https://gateway.example.com/ledger/']),
      runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', RUNNER, '--format', 'json', '--resource', 'https://gateway.example.com/orders-admin/']),
    ]);
    assert.equal(ledger.code, 1);
    assert.deepEqual(JSON.parse(ledger.stdout).outcome, {
      decision: 'denied',
      reason: 'resource_not_granted',
      description: 'This workload is granted no policy that opens the API the "resource" parameter names.',
    });
    assert.equal(unknown.code, 1);
    assert.equal(JSON.parse(unknown.stdout).outcome.reason, 'unknown_resource');
  });

  it('a malformed resource is a usage error (exit 2) with the exchange\'s description', async () => {
    const { code, stdout, stderr } = await runCli(['explain', '--config', EXAMPLE_CONFIG, '--identity', RUNNER, '--resource', 'https://gateway.example.com/orders/#x']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.ok(stderr.startsWith('token-broker explain: --resource: The "resource" parameter must not have a fragment (RFC 8707). (malformed_resource)\n'), stderr);
  });
});

describe('token-broker test-rules with resource', () => {
  it('judges each case\'s resource as POST /token would, a malformed one included', async () => {
    const identity = '{issuer: in-cluster, namespace: payments, serviceAccount: argo-workflow-runner, pod: orders-sync-x7k2p-call-api-3149217812}';
    const cases = await scratch.write('resource.cases.yaml', [
      'cases:',
      '  - name: orders narrows to the orders policies',
      `    identity: ${identity}`,
      '    resource: https://gateway.example.com/orders/v1/orders',
      '    expect: {policies: [payments-read, payments-write]}',
      '  - name: ledger is not opened by them',
      `    identity: ${identity}`,
      '    resource: https://gateway.example.com/ledger/',
      '    expect: {denied: resource_not_granted}',
      '  - name: a fragment is malformed',
      `    identity: ${identity}`,
      '    resource: "https://gateway.example.com/orders/#x"',
      '    expect: {denied: malformed_resource}',
      '  - name: a wrong expectation fails',
      `    identity: ${identity}`,
      '    resource: https://gateway.example.com/status/',
      '    expect: {policies: [payments-read]}',
      '',
    ]);
    const { code, stdout } = await runCli(['test-rules', '--config', EXAMPLE_CONFIG, cases]);
    assert.equal(code, 1, stdout);
    const results = stdout.split('\n').filter((line) => /^(PASS|FAIL)  /.test(line));
    assert.deepEqual(
      results.map((line) => line.slice(0, 6) + line.slice(6).split(':')[0]),
      ['PASS  orders narrows to the orders policies', 'PASS  ledger is not opened by them', 'PASS  a fragment is malformed', 'FAIL  a wrong expectation fails'],
    );
    assert.ok(stdout.includes('resource_not_granted'), stdout);
    assert.ok(stdout.trimEnd().endsWith('3 passed, 1 failed'), stdout);
  });
});
