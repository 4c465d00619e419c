import { invalidRequest } from '../errors.js';
import { KUBERNETES_CLAIM } from '../protocol.js';
import { isDnsLabel, isDnsSubdomain } from './kubernetes-names.js';
import type { IssuerConfig } from '../config/schema.js';

/** Verified claims of a subject token, as JSON. */
export type Claims = Readonly<Record<string, unknown>>;

/** Who is asking, as established by a verified subject token. */
export interface WorkloadIdentity {
  /** Configured short name of the issuer that signed the subject token. */
  readonly issuerName: string;
  /** The subject token's `iss`. */
  readonly issuer: string;
  /** The subject token's `sub`. */
  readonly subject: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly serviceAccountUid?: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly nodeName?: string;
  /** Set when the token is bound to a Secret rather than a pod. */
  readonly secretName?: string;
  /** Every verified claim, for rules that match by JSON pointer. */
  readonly claims: Claims;
  /** What the cluster's API says about the workload, when Kubernetes is enabled for its issuer. */
  readonly cluster?: ClusterMetadata;
}

/**
 * Labels and annotations read from the Kubernetes API. Namespace and service-account labels are set by the
 * namespace's administrators; pod labels and annotations by whoever submits the workflow (Argo copies them).
 * A field is absent when it was not looked up, so rules that need it cannot match.
 */
export interface ClusterMetadata {
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  readonly serviceAccountLabels?: Readonly<Record<string, string>>;
  readonly podLabels?: Readonly<Record<string, string>>;
  readonly podAnnotations?: Readonly<Record<string, string>>;
}

/** Argo's pod label naming the workflow run. */
export const ARGO_WORKFLOW_LABEL = 'workflows.argoproj.io/workflow';
/** Argo's pod annotation naming the workflow node (the step). */
export const ARGO_NODE_ANNOTATION = 'workflows.argoproj.io/node-name';

/** The Argo workflow run and node of the workload's pod, when it is an Argo pod whose metadata was read. */
export function argoContextOf(identity: WorkloadIdentity): { readonly workflow?: string; readonly node?: string } {
  const workflow = identity.cluster?.podLabels?.[ARGO_WORKFLOW_LABEL];
  const node = identity.cluster?.podAnnotations?.[ARGO_NODE_ANNOTATION];
  return { ...(workflow !== undefined && { workflow }), ...(node !== undefined && { node }) };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function string(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function missing(claim: string) {
  return invalidRequest('missing_claim', `The subject token lacks the "${claim}" claim of a Kubernetes service-account token.`, {
    facts: { claim },
  });
}

/** A name the API server would have refused to create: the token was not minted by it. */
function notAKubernetesName(claim: string, what: 'DNS label' | 'DNS subdomain') {
  return invalidRequest('malformed_token', `The subject token's "${claim}" is not a Kubernetes name (an RFC 1123 ${what}).`, {
    facts: { claim },
  });
}

/** An optional name inside the `kubernetes.io` claim: absent, or a valid RFC 1123 subdomain. */
function optionalName(value: Record<string, unknown> | undefined, claim: string): string | undefined {
  if (value === undefined || value.name === undefined) return undefined;
  const name = value.name;
  if (typeof name !== 'string' || !isDnsSubdomain(name)) throw notAKubernetesName(claim, 'DNS subdomain');
  return name;
}

/**
 * Reads the workload identity out of verified claims.
 *
 * Namespace, service account, pod, node and Secret are Kubernetes facts, and only an issuer of `kind: kubernetes`
 * (an API server, which derives them from the objects it signs for) vouches for them: for such an issuer the
 * `kubernetes.io` claim is required, every name in it must be one the API server accepts, and `sub` must agree
 * with namespace and service account. For an `oidc` issuer (CI, SSO) anyone able to get a token from it may have
 * chosen those claims, so the identity carries `sub` only and a rule that reads Kubernetes facts cannot match it;
 * its claims stay available to rules that match them by JSON pointer. Pure.
 */
export function identityFromClaims(issuer: IssuerConfig, claims: Claims): WorkloadIdentity {
  const subject = string(claims.sub);
  if (subject === undefined) {
    throw invalidRequest('missing_claim', 'The subject token has no "sub" claim.', { facts: { claim: 'sub' } });
  }
  if (issuer.kind !== 'kubernetes') return { issuerName: issuer.name, issuer: issuer.issuer, subject, claims };
  const kube = record(claims[KUBERNETES_CLAIM]);
  if (kube === undefined) throw missing(KUBERNETES_CLAIM);
  const namespace = string(kube.namespace);
  const serviceAccount = record(kube.serviceaccount);
  const serviceAccountName = string(serviceAccount?.name);
  if (namespace === undefined) throw missing(`${KUBERNETES_CLAIM}.namespace`);
  if (serviceAccountName === undefined) throw missing(`${KUBERNETES_CLAIM}.serviceaccount.name`);
  if (!isDnsLabel(namespace)) throw notAKubernetesName(`${KUBERNETES_CLAIM}.namespace`, 'DNS label');
  if (!isDnsSubdomain(serviceAccountName)) throw notAKubernetesName(`${KUBERNETES_CLAIM}.serviceaccount.name`, 'DNS subdomain');
  // The API server derives `sub` from the same fields; a token where they disagree was not minted by it.
  if (subject !== `system:serviceaccount:${namespace}:${serviceAccountName}`) {
    throw invalidRequest('malformed_token', 'The subject token\'s "sub" does not match its kubernetes.io namespace and service account.');
  }
  const pod = record(kube.pod);
  const podName = optionalName(pod, `${KUBERNETES_CLAIM}.pod.name`);
  const nodeName = optionalName(record(kube.node), `${KUBERNETES_CLAIM}.node.name`);
  const secretName = optionalName(record(kube.secret), `${KUBERNETES_CLAIM}.secret.name`);
  const serviceAccountUid = string(serviceAccount?.uid);
  const podUid = string(pod?.uid);
  // Built member by member, absent members left out: object spreads here cost ~10 us per miss (bench/README.md).
  const identity: Mutable<WorkloadIdentity> = { issuerName: issuer.name, issuer: issuer.issuer, subject, claims, namespace, serviceAccount: serviceAccountName };
  if (serviceAccountUid !== undefined) identity.serviceAccountUid = serviceAccountUid;
  if (podName !== undefined) identity.podName = podName;
  if (podUid !== undefined) identity.podUid = podUid;
  if (nodeName !== undefined) identity.nodeName = nodeName;
  if (secretName !== undefined) identity.secretName = secretName;
  return identity;
}

/** A type with its readonly members writable: for building an identity member by member before it is handed out. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
