import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigFile } from '../../src/server/config/load-config.js';
import { ENVIRONMENT_VARIABLES } from '../../src/server/config/environment.js';
import type { BrokerConfig } from '../../src/server/config/schema.js';

const EXAMPLE_CONFIG = 'config/broker.example.yaml';
const loaderVariables = ENVIRONMENT_VARIABLES.filter((variable) => variable.readBy === 'config loader').map((variable) => variable.name);

/** An environment that records every name the loader reads, whatever it holds. */
function recordingEnvironment(values: Record<string, string>): { env: Record<string, string | undefined>; read: Set<string> } {
  const read = new Set<string>();
  const env = new Proxy(values, {
    get(target, name) {
      if (typeof name === 'string') read.add(name);
      return typeof name === 'string' ? target[name] : undefined;
    },
  });
  return { env, read };
}

describe('the environment table is what the configuration loader reads', () => {
  it('the loader reads exactly the table\'s "config loader" variables, no other', async () => {
    const { env, read } = recordingEnvironment({});
    await loadConfigFile(EXAMPLE_CONFIG, env);
    assert.deepEqual([...read].sort(), [...loaderVariables].sort());
  });

  it('each of them changes the loaded configuration as the table says', async () => {
    const base = await loadConfigFile(EXAMPLE_CONFIG, {});
    // alongside: what the variable needs with it (the TLS pair is set together or not at all).
    // expected: what the configuration then holds, when that is not the value itself.
    const effects: Record<
      (typeof loaderVariables)[number],
      { value: string; read: (config: BrokerConfig) => unknown; alongside?: Record<string, string>; expected?: string }
    > = {
      PORT: { value: '9443', read: (config) => config.server.port },
      PUBLIC_URL: { value: 'https://broker.example.net', read: (config) => config.server.publicUrl },
      TLS_CERT_FILE: { value: '/tls/tls.crt', read: (config) => config.server.tls?.certFile, alongside: { TLS_KEY_FILE: '/tls/tls.key' } },
      TLS_KEY_FILE: { value: '/tls/tls.key', read: (config) => config.server.tls?.keyFile, alongside: { TLS_CERT_FILE: '/tls/tls.crt' } },
      REDIS_URL: { value: 'rediss://cache.internal:6380/2', read: (config) => config.cache.redis?.url },
      KUBECONFIG: { value: '/etc/kube/a.yaml:/etc/kube/b.yaml', read: (config) => config.kubernetes?.kubeconfig, expected: '/etc/kube/a.yaml' },
      KUBERNETES_SERVICE_HOST: {
        value: 'fd00:10:96::1',
        read: (config) => config.kubernetes?.apiServer,
        alongside: { KUBERNETES_SERVICE_PORT: '443' },
        expected: 'https://[fd00:10:96::1]:443',
      },
      KUBERNETES_SERVICE_PORT: {
        value: '6443',
        read: (config) => config.kubernetes?.apiServer,
        alongside: { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
        expected: 'https://10.96.0.1:6443',
      },
    };
    for (const name of loaderVariables) {
      const effect = effects[name];
      const loaded = await loadConfigFile(EXAMPLE_CONFIG, { ...effect.alongside, [name]: effect.value });
      assert.notDeepEqual(effect.read(loaded), effect.read(base), `${name} changed nothing`);
      assert.equal(String(effect.read(loaded)), effect.expected ?? effect.value, name);
    }
  });

  it('half a TLS pair is refused, naming the missing variable', async () => {
    await assert.rejects(loadConfigFile(EXAMPLE_CONFIG, { TLS_CERT_FILE: '/tls/tls.crt' }), /TLS_KEY_FILE \(environment\): required when TLS_CERT_FILE is set \(both or neither\)/);
    await assert.rejects(loadConfigFile(EXAMPLE_CONFIG, { TLS_KEY_FILE: '/tls/tls.key' }), /TLS_CERT_FILE \(environment\): required when TLS_KEY_FILE is set \(both or neither\)/);
  });

  it('a cluster block with a kubeconfig keeps it: the in-cluster API server is only for blocks without one', async () => {
    const inPod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const withFile = await loadConfigFile(EXAMPLE_CONFIG, { ...inPod, KUBECONFIG: '/etc/kube/a.yaml' });
    assert.deepEqual([withFile.kubernetes?.kubeconfig, withFile.kubernetes?.apiServer], ['/etc/kube/a.yaml', undefined]);
    const halfSet = await loadConfigFile(EXAMPLE_CONFIG, { KUBERNETES_SERVICE_HOST: '10.96.0.1' });
    assert.equal(halfSet.kubernetes?.apiServer, undefined, 'a host without a port is no API server');
  });
});
