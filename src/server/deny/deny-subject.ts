import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import type { DenySubject } from './deny-match.js';

/**
 * The facets of a verified identity a deny is judged against: the configured issuer name (as rules name it), the
 * namespace and service account (for kubernetes issuers only), and the Argo workflow run when the pod's labels were
 * read from the cluster. Pure.
 */
export function denySubjectOf(identity: WorkloadIdentity): DenySubject & { readonly issuer: string } {
  const { workflow } = argoContextOf(identity);
  return {
    issuer: identity.issuerName,
    ...(identity.namespace !== undefined && { namespace: identity.namespace }),
    ...(identity.serviceAccount !== undefined && { serviceAccount: identity.serviceAccount }),
    ...(workflow !== undefined && { workflow }),
  };
}
