import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runBrokerChild } from '../support/broker-child.js';

/*
 * @kubernetes/client-node is about 70 MB of resident memory. A broker whose issuers use no Kubernetes API must not
 * load it; one that does loads it while the broker is built, so a bad kubeconfig still stops start-up. Each case
 * runs in a fresh process: a module loaded once stays loaded.
 */

const IMPORTS = "import { kubernetesClientLoaded } from './src/server/kubernetes/kube-config.ts';";

describe('@kubernetes/client-node is loaded only when a Kubernetes API is configured', () => {
  it('no kubernetes block: a broker is built and the client is never loaded', () => {
    const child = runBrokerChild(IMPORTS, `const broker = build({});
console.log(JSON.stringify({ loaded: kubernetesClientLoaded() }));
await broker.close();`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { loaded: false });
  });

  it('a kubernetes block: the client is loaded while the broker is built, and a missing kubeconfig fails then', () => {
    const child = runBrokerChild(IMPORTS, `let error = '';
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
