/**
 * What the broker reads from the Kubernetes API, reduced to the fields pod binding and rule selectors use.
 * Plain data with no client types, so the pure core (identity, rules) never imports @kubernetes/client-node.
 */

/** The metadata every object kind shares. */
export interface ObjectInfo {
  readonly name: string;
  /** Absent for cluster-scoped objects (namespaces). */
  readonly namespace?: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339 time at which deletion was requested; present means the object is terminating. */
  readonly deletionTimestamp?: string;
}

export interface PodInfo extends ObjectInfo {
  readonly namespace: string;
  /** `status.phase`: Pending, Running, Succeeded, Failed or Unknown. */
  readonly phase?: string;
}

export type NamespaceInfo = ObjectInfo;

export interface ServiceAccountInfo extends ObjectInfo {
  readonly namespace: string;
}

/** The answer of a TokenReview (`status`), with the pod binding kube-apiserver reports in `user.extra`. */
export interface TokenReviewResult {
  readonly authenticated: boolean;
  /**
   * Audiences the token was accepted for: the intersection of the requested audiences and the token's.
   * Empty with `authenticated` true means the API server's own audience, not the requested one.
   */
  readonly audiences: readonly string[];
  readonly username?: string;
  /** `authentication.kubernetes.io/pod-name` from `status.user.extra`. */
  readonly podName?: string;
  /** `authentication.kubernetes.io/pod-uid` from `status.user.extra`. */
  readonly podUid?: string;
  /** `status.error`: why the token was not authenticated, as the API server words it. */
  readonly error?: string;
}

/** `status.user.extra` keys kube-apiserver sets for pod-bound service-account tokens. */
export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
