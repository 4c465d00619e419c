/**
 * The port the identity checks use to ask a cluster about a workload, and the plain data it answers with: the
 * fields pod binding and rule selectors use, with no client types, so the pure core (identity, rules) never imports
 * @kubernetes/client-node. The adapter is src/server/kubernetes/kubernetes-metadata-source.ts; tests give stand-ins.
 */

/**
 * What the broker asks the Kubernetes API about a workload. Read-only except TokenReview: GET on
 * namespaces, service accounts and pods, CREATE on tokenreviews. Every adapter passes
 * test/contracts/kubernetes-metadata-source.contract.ts.
 */
export interface KubernetesMetadataSource {
  /** The namespace, or undefined when the API answers 404 (or the name cannot exist). */
  getNamespace(name: string): Promise<NamespaceInfo | undefined>;
  /** The service account, or undefined when the API answers 404 (or the name cannot exist). */
  getServiceAccount(namespace: string, name: string): Promise<ServiceAccountInfo | undefined>;
  /**
   * The pod as the API serves it now, or undefined on 404. `uid` is the token's pod UID: it keys the cache so a
   * pod re-created under the same name is looked up afresh. The returned pod's own `uid` may differ; the
   * caller compares.
   */
  getPod(namespace: string, name: string, uid: string): Promise<PodInfo | undefined>;
  /** Asks the API server to review a token for these audiences. Never cached by the broker. */
  reviewToken(token: string, audiences: readonly string[]): Promise<TokenReviewResult>;
  /** Aborts requests in flight and drops the caches; later calls fail with `kubernetes_unavailable`. */
  close(): void;
}

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
