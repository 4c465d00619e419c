import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStandInKubernetes, type StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { startHarness, type Harness, type HarnessOptions } from './broker-harness.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/** A harness whose broker reads workload metadata from a stand-in cluster. */
export interface ClusterHarness extends Harness {
  readonly kube: StandInKubernetes;
  /** The kubeconfig the broker was given, pointing at `kube`. */
  readonly kubeconfig: string;
  /** Closes the broker, the stand-in issuer and the cluster, and removes the kubeconfig. */
  close(): Promise<void>;
}

export interface ClusterHarnessOptions extends HarnessOptions {
  /** The top-level kubernetes block, without `kubeconfig` (the stand-in's is filled in). */
  readonly kubernetes: Omit<NonNullable<BrokerConfigInput['kubernetes']>, 'kubeconfig'>;
}

/**
 * Starts a stand-in cluster, writes a kubeconfig for it to a scratch directory, and starts a warmed-up broker
 * harness (startHarness) whose kubernetes block uses it. The cluster starts empty: tests put the namespaces,
 * service accounts and pods they need.
 */
export async function startClusterHarness(options: ClusterHarnessOptions): Promise<ClusterHarness> {
  const kube = await startStandInKubernetes();
  const dir = await mkdtemp(join(tmpdir(), 'tb-cluster-harness-'));
  const closeCluster = async () => {
    await kube.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const kubeconfig = await kube.writeKubeconfig(dir);
    const harness = await startHarness({
      ...options,
      config: (issuerUrl) => ({ ...options.config?.(issuerUrl), kubernetes: { kubeconfig, ...options.kubernetes } }),
    });
    await harness.broker.warmUp();
    return {
      ...harness,
      kube,
      kubeconfig,
      async close() {
        await harness.close();
        await closeCluster();
      },
    };
  } catch (error) {
    await closeCluster();
    throw error;
  }
}
