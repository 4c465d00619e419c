import { invalidRequest, type BrokerError } from '../errors.js';
import type { WorkloadIdentity } from './workload-identity.js';

/** Argo's pod label, set to "true" when the step's pod has finished. */
export const ARGO_COMPLETED_LABEL = 'workflows.argoproj.io/completed';

/** What the binding check needs to know about the pod, as the API server returned it. */
export interface BoundPod {
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string | undefined;
  /** `status.phase`: Pending, Running, Succeeded, Failed or Unknown. */
  readonly phase?: string | undefined;
}

/**
 * Whether a token is still bound to a live pod: the pod must exist with the token's pod UID, not be terminating
 * or finished, and, for an Argo pod, not be labelled completed. A token bound to a Secret (or to nothing) has no pod to check
 * and is refused. Returns the refusal, or undefined when the binding holds. Pure.
 */
export function podBindingRefusal(identity: WorkloadIdentity, pod: BoundPod | undefined): BrokerError | undefined {
  if (identity.podName === undefined || identity.podUid === undefined) {
    return invalidRequest(
      'not_pod_bound',
      identity.secretName !== undefined
        ? 'The subject token is bound to a Secret, not a pod; this broker accepts only pod-bound projected tokens.'
        : 'The subject token is not bound to a pod; mount a projected service-account token in the step\'s pod.',
    );
  }
  if (pod === undefined) {
    return invalidRequest('pod_not_found', 'The pod this subject token was issued to no longer exists; a token copied out of a finished step is not accepted.');
  }
  if (pod.uid !== identity.podUid) {
    return invalidRequest(
      'pod_uid_mismatch',
      'A pod with this name exists, but it is not the pod the subject token was issued to (it was re-created).',
    );
  }
  if (pod.deletionTimestamp !== undefined) {
    return invalidRequest('pod_terminating', 'The pod this subject token was issued to is terminating.');
  }
  if (pod.labels[ARGO_COMPLETED_LABEL] === 'true') {
    return invalidRequest('workflow_completed', 'The Argo step this subject token was issued to has completed.');
  }
  // No container of a finished pod runs any more: its token can only be presented by someone who copied it.
  if (pod.phase === 'Succeeded' || pod.phase === 'Failed') {
    return invalidRequest('pod_finished', `The pod this subject token was issued to has finished (${pod.phase}).`);
  }
  return undefined;
}
