import { createRequire } from 'node:module';
import type * as KubernetesClient from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * @kubernetes/client-node, loaded on first use: it is about 70 MB of resident memory (every API model), which a
 * broker whose issuers use no Kubernetes API should not carry. require() loads it synchronously (Node >= 20.19
 * requires ES modules), so a source is still created, and a bad kubeconfig still refused, at start-up.
 */
let loadedClient: typeof KubernetesClient | undefined;

export function kubernetesClient(): typeof KubernetesClient {
  loadedClient ??= createRequire(import.meta.url)('@kubernetes/client-node') as typeof KubernetesClient;
  return loadedClient;
}

/** Whether @kubernetes/client-node has been loaded into this process (start-up diagnostics and tests). */
export function kubernetesClientLoaded(): boolean {
  return loadedClient !== undefined;
}

/** Where a pod's service-account credential is mounted (client-go's rest.InClusterConfig reads the same files). */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * How a cluster block reaches its API server: a kubeconfig file, or, in a pod, the API server the configuration
 * loader found in KUBERNETES_SERVICE_HOST/PORT with the pod's own service-account token. This module never reads
 * the environment; the loader does (src/server/config/load-config.ts).
 */
export interface ClusterConnection {
  readonly kubeconfig?: string | undefined;
  readonly apiServer?: string | undefined;
}

/**
 * A KubeConfig for the connection, checked now so a bad one stops start-up rather than every request: the file must
 * load and name a current cluster, and a plain-HTTP server must say insecure-skip-tls-verify (the client refuses it
 * per request otherwise).
 */
export function loadKubeConfig(connection: ClusterConnection): KubeConfig {
  const kubeConfig = new (kubernetesClient().KubeConfig)();
  if (connection.kubeconfig !== undefined) {
    kubeConfig.loadFromFile(connection.kubeconfig);
  } else if (connection.apiServer !== undefined) {
    // What loadFromCluster builds, with the server given instead of read from the environment. The token file is
    // re-read as the kubelet rotates it (the client's tokenFile provider).
    kubeConfig.loadFromClusterAndUser(
      { name: 'inCluster', server: connection.apiServer, caFile: `${SERVICE_ACCOUNT_DIR}/ca.crt`, skipTLSVerify: false },
      { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${SERVICE_ACCOUNT_DIR}/token` } } },
    );
  } else {
    throw new Error('Kubernetes API: not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no kubeconfig given');
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error(`Kubernetes API: no current cluster in ${connection.kubeconfig ?? 'the in-cluster configuration'}`);
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error(`Kubernetes API: server ${cluster.server} is plain HTTP; the client only allows that with insecure-skip-tls-verify: true`);
  }
  return kubeConfig;
}
