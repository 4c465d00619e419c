import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * @kubernetes/client-node is about 70 MB of resident memory. A broker whose issuers use no Kubernetes API must not
 * load it; one that does loads it while the broker is built, so a bad kubeconfig still stops start-up. Each case
 * runs in a fresh process: a module loaded once stays loaded.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runChild(script: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

const PRELUDE = `
import { pino } from 'pino';
import { createBroker } from './src/broker.ts';
import { validateConfig } from './src/config/validate-config.ts';
import { staticSigningKeySet } from './src/mint/signing-key-set.ts';
import { kubernetesClientLoaded } from './src/kubernetes/kubernetes-metadata-source.ts';
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

describe('@kubernetes/client-node is loaded only when a Kubernetes API is configured', () => {
  it('no kubernetes block: a broker is built and the client is never loaded', () => {
    const child = runChild(`${PRELUDE}
const broker = build({});
console.log(JSON.stringify({ loaded: kubernetesClientLoaded() }));
await broker.close();`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: false });
  });

  it('a kubernetes block: the client is loaded while the broker is built, and a missing kubeconfig fails then', () => {
    const child = runChild(`${PRELUDE}
let error = '';
try {
  build({ kubernetes: { kubeconfig: '/nonexistent/kubeconfig' } });
} catch (e) {
  error = e instanceof Error ? e.message : String(e);
}
console.log(JSON.stringify({ loaded: kubernetesClientLoaded(), failedAtStartUp: error !== '' }));`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: true, failedAtStartUp: true });
  });
});
