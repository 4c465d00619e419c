import { createHash } from 'node:crypto';
import type { WorkloadIdentity } from '../identity/workload-identity.js';

/**
 * The bucket a mint counts against: one workload instance (issuer, subject, pod). A fan-out of many pods of
 * one service account gets a bucket per pod, so the limit stops a runaway step, not a wide workflow. Pure.
 */
export function rateLimitKey(identity: WorkloadIdentity): string {
  return createHash('sha256')
    .update(JSON.stringify([identity.issuer, identity.subject, identity.podUid ?? null]))
    .digest('base64url');
}
