import type { WorkloadIdentity } from '../../src/identity/workload-identity.js';

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
