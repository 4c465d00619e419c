import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';

/**
 * A verified workload for pure tests: an Argo runner's service account in `payments`, with no pod and no
 * Kubernetes metadata. Tests add what they need by spreading it.
 */
export const PAYMENTS_RUNNER: WorkloadIdentity = {
  issuerName: 'cluster-a',
  issuer: 'https://cluster-a.example',
  subject: 'system:serviceaccount:payments:argo-runner',
  namespace: 'payments',
  serviceAccount: 'argo-runner',
  claims: {},
};

/** PAYMENTS_RUNNER in an Argo step's pod, as a projected token with pod claims names it; no cluster metadata. */
export const PAYMENTS_RUNNER_POD: WorkloadIdentity = {
  ...PAYMENTS_RUNNER,
  podName: 'orders-sync-x7k2p-call-api-3149217812',
  podUid: '0d8b260e-0000-4000-8000-000000000001',
};
