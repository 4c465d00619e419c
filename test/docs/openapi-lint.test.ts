import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DENIED_CONNECTION_MARKER } from '../support/deny-network.js';

/*
 * `redocly lint` of openapi.yaml with the project's redocly.yaml (the recommended ruleset): zero errors, zero
 * warnings, nothing ignored. The CLI comes from node_modules (a pinned devDependency, never npx of a fresh one) and
 * runs offline: telemetry off in redocly.yaml and in its environment, update notices off, and a preloaded guard
 * (test/support/deny-network.ts) that refuses any connection but loopback. Without REDOCLY_TELEMETRY=off the CLI
 * sends usage data to Redocly after every run; the guard would report it here.
 *
 * test/http/openapi.test.ts checks the same document against the responses the broker really sends.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDOCLY = fileURLToPath(new URL('../../node_modules/@redocly/cli/bin/cli.js', import.meta.url));
const GUARD = fileURLToPath(new URL('../support/deny-network.ts', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node --import tsx --import <guard> ...args` from the repository root, offline. */
function runGuarded(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', GUARD, ...args], {
      cwd: ROOT,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface LintReport {
  readonly totals: { readonly errors: number; readonly warnings: number; readonly ignored: number };
  readonly problems: readonly { readonly ruleId: string; readonly severity: string; readonly message: string; readonly location: readonly { readonly pointer?: string }[] }[];
}

describe('openapi.yaml: redocly lint', { timeout: 120_000 }, () => {
  it('reports zero errors and zero warnings with redocly.yaml, ignores nothing, and connects nowhere', async () => {
    const run = await runGuarded([REDOCLY, 'lint', 'openapi.yaml', '--config', 'redocly.yaml', '--format', 'json']);
    assert.doesNotMatch(run.stderr, new RegExp(DENIED_CONNECTION_MARKER), 'the linter tried to reach the network');
    const report = JSON.parse(run.stdout) as LintReport;
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer ?? '?'}: ${p.message}`);
    assert.deepEqual(problems, [], 'redocly lint problems');
    assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 });
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /No configurations were provided/, 'redocly.yaml was read');
  });

  it('the guard is not vacuous: net, tls and fetch connections it denies fail, and it says so (loopback only)', async () => {
    // 127.0.0.9 is loopback, denied here on purpose: were the guard broken, nothing would leave the machine.
    const script = `
      const net = await import('node:net');
      const tls = await import('node:tls');
      const attempts = {
        net: () => net.connect({ host: '127.0.0.9', port: 65000 }),
        tls: () => tls.connect({ host: '127.0.0.9', port: 65000 }),
        fetch: () => fetch('http://127.0.0.9:65000/'),
      };
      for (const [name, attempt] of Object.entries(attempts)) {
        try { await attempt(); console.log(name, 'connected'); } catch { console.log(name, 'refused'); }
      }`;
    const run = await runGuarded(['--input-type=module', '--eval', script], { DENY_NETWORK_ALSO: '127.0.0.9' });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n'), ['net refused', 'tls refused', 'fetch refused']);
    assert.equal(run.stderr.split(DENIED_CONNECTION_MARKER).length - 1, 3, run.stderr);
  });
});
