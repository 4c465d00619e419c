import { invalidRequest } from '../errors.js';
import { podBindingRefusal } from './pod-binding.js';
import type { KubernetesMetadataSource, PodInfo } from './kubernetes-metadata.js';
import type { ClusterMetadata, Mutable, WorkloadIdentity } from './workload-identity.js';

/** A cluster's API and how the broker uses it for one issuer's tokens. */
export interface ClusterAccess {
  readonly podBinding: 'enforce' | 'off';
  readonly verification: 'jwks' | 'tokenreview';
  readonly source: KubernetesMetadataSource;
}

/** Which lookups an exchange needs, beyond pod binding. */
export interface ClusterNeeds {
  readonly namespaceLabels: boolean;
  readonly serviceAccountLabels: boolean;
  readonly pod: boolean;
}

/**
 * Checks a verified workload with its cluster's API and returns it with the metadata the rules need.
 * TokenReview (when configured) must authenticate the token for one of the issuer's audiences; pod binding
 * (when enforced) must hold, and the service account (looked up with pod binding or for its labels) must be the
 * one the token names. Lookups run in parallel; any API failure rejects with `kubernetes_unavailable`,
 * so no token is ever issued on a binding that could not be checked.
 */
export async function checkWithCluster(
  identity: WorkloadIdentity,
  subjectToken: string,
  audiences: readonly string[],
  access: ClusterAccess,
  needs: ClusterNeeds,
): Promise<WorkloadIdentity> {
  const { source } = access;
  const { namespace, serviceAccount, podName, podUid } = identity;
  const wantPod = (access.podBinding === 'enforce' || needs.pod) && namespace !== undefined && podName !== undefined && podUid !== undefined;
  // The service account is part of the binding too: the API server refuses a token whose service account was
  // deleted, or deleted and re-created under the same name (another UID), and so does the broker.
  const wantServiceAccount = (access.podBinding === 'enforce' || needs.serviceAccountLabels) && namespace !== undefined && serviceAccount !== undefined;
  const [review, pod, namespaceInfo, serviceAccountInfo] = await Promise.all([
    access.verification === 'tokenreview' ? source.reviewToken(subjectToken, audiences) : undefined,
    wantPod ? source.getPod(namespace, podName, podUid) : undefined,
    needs.namespaceLabels && namespace !== undefined ? source.getNamespace(namespace) : undefined,
    wantServiceAccount ? source.getServiceAccount(namespace, serviceAccount) : undefined,
  ]);

  if (review !== undefined) {
    if (!review.authenticated) {
      throw invalidRequest('token_review_rejected', 'The cluster\'s API server did not authenticate the subject token (it may be revoked, or its pod or service account deleted).', {
        detail: `TokenReview: ${review.error ?? 'not authenticated'}`,
      });
    }
    if (!review.audiences.some((audience) => audiences.includes(audience))) {
      throw invalidRequest('token_review_rejected', 'The cluster\'s API server did not accept the subject token for this broker\'s audience.', {
        detail: `TokenReview audiences: [${review.audiences.join(', ')}]`,
      });
    }
    if (review.podUid !== undefined && review.podUid !== podUid) {
      throw invalidRequest('token_review_rejected', 'The cluster\'s API server reports a different pod for this subject token.');
    }
  }
  if (access.podBinding === 'enforce') {
    const refusal = podBindingRefusal(identity, wantPod ? pod : undefined);
    if (refusal !== undefined) throw refusal;
  }
  if (wantServiceAccount) {
    if (serviceAccountInfo === undefined) {
      throw invalidRequest('service_account_not_found', 'The service account this subject token was issued to no longer exists.');
    }
    if (identity.serviceAccountUid !== undefined && serviceAccountInfo.uid !== identity.serviceAccountUid) {
      throw invalidRequest(
        'service_account_uid_mismatch',
        'The service account this subject token was issued to was deleted; one of the same name exists now, but it is another identity.',
      );
    }
  }
  const livePod: PodInfo | undefined = pod !== undefined && pod.uid === podUid ? pod : undefined;
  // Built member by member, absent members left out: object spreads here cost microseconds per exchange (bench/README.md).
  const cluster: Mutable<ClusterMetadata> = {};
  if (needs.namespaceLabels) cluster.namespaceLabels = namespaceInfo?.labels ?? {};
  // Its UID was compared above: these are the labels of the service account the token names.
  if (needs.serviceAccountLabels) cluster.serviceAccountLabels = serviceAccountInfo?.labels ?? {};
  if (livePod !== undefined) {
    cluster.podLabels = livePod.labels;
    cluster.podAnnotations = livePod.annotations;
  }
  const enriched: Mutable<WorkloadIdentity> = Object.assign({}, identity);
  enriched.cluster = cluster;
  return enriched;
}
