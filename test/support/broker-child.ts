import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * Runs a script in a fresh Node process that can build a broker: for what a process keeps once done (a module
 * loaded stays loaded), which a test inside this process cannot observe. The script is appended to a prelude that
 * defines `build(extra)`: a broker from a minimal valid configuration merged with `extra`, silent logger, no keys.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const PRELUDE = `
import { pino } from 'pino';
import { createBroker } from './src/server/broker.ts';
import { validateConfig } from './src/server/config/validate-config.ts';
import { staticSigningKeySet } from './src/server/mint/signing-key-set.ts';
const base = {
  server: { port: 8080, publicUrl: 'https://token-broker.test' },
  issuers: [{ name: 'a', issuer: 'https://issuer.test', audiences: ['x'], jwksUri: 'https://issuer.test/jwks' }],
  signing: { algorithm: 'ES256', keysDir: '/unused' },
  rules: [{ name: 'r', match: { namespaces: ['*'] }, policies: ['p'] }],
};
function build(extra) {
  const v = validateConfig({ ...base, ...extra });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return createBroker(v.config, { logger: pino({ level: 'silent' }), signingKeys: staticSigningKeySet([]) });
}
`;

export interface ChildResult {
  readonly status: number | null;
  /** Trimmed. */
  readonly stdout: string;
  readonly stderr: string;
}

/** `imports` go before the prelude (ES module imports must come first); `script` after it. */
export function runBrokerChild(imports: string, script: string): ChildResult {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `${imports}\n${PRELUDE}\n${script}`], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}
