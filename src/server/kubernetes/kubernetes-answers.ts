/**
 * Reads the Kubernetes API's answers into the plain data of the identity port, refusing anything a kube-apiserver
 * would not send. Pure: no client, no network; the adapter (kubernetes-metadata-source.ts) hands it the deserialized
 * bodies, and test/kubernetes/kubernetes-answers.test.ts hands it hostile ones.
 */
import type { NamespaceInfo, ObjectInfo, PodInfo, ServiceAccountInfo, TokenReviewResult } from '../identity/kubernetes-metadata.js';

/** `status.user.extra` keys kube-apiserver sets for pod-bound service-account tokens. */
export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';

/** An answer that arrived but is not what a Kubernetes API server sends. */
export class UnexpectedAnswerError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new UnexpectedAnswerError(`${field} is not an object`);
  const result: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new UnexpectedAnswerError(`${field}["${key}"] is not a string`);
    result[key] = item;
  }
  return result;
}

/** The deserializer turns RFC 3339 strings into Date objects (Invalid Date when malformed). */
function timestamp(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) {
    // A deletion request whose time cannot be read is still a deletion request: keep it present.
    if (Number.isNaN(value.getTime())) return 'unparsable';
    // Back to the API's own RFC 3339 form (whole seconds, no ".000").
    return value.toISOString().replace('.000Z', 'Z');
  }
  if (typeof value === 'string') return value;
  throw new UnexpectedAnswerError(`${field} is not a timestamp`);
}

function readMetadata(object: unknown, kind: string, name: string, namespace: string | undefined): ObjectInfo {
  if (!isRecord(object) || !isRecord(object['metadata'])) throw new UnexpectedAnswerError(`${kind} without metadata`);
  const metadata = object['metadata'];
  const uid = metadata['uid'];
  if (typeof uid !== 'string' || uid === '') throw new UnexpectedAnswerError(`${kind} without metadata.uid`);
  // A proxy or a misrouted path answering 200 with some other object must not pass for the one asked about.
  if (metadata['name'] !== name) throw new UnexpectedAnswerError(`${kind} answer names "${String(metadata['name'])}", not "${name}"`);
  if (namespace !== undefined && metadata['namespace'] !== namespace) {
    throw new UnexpectedAnswerError(`${kind} answer is in namespace "${String(metadata['namespace'])}", not "${namespace}"`);
  }
  const deletionTimestamp = timestamp(metadata['deletionTimestamp'], 'metadata.deletionTimestamp');
  return {
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    uid,
    labels: stringMap(metadata['labels'], 'metadata.labels'),
    annotations: stringMap(metadata['annotations'], 'metadata.annotations'),
    ...(deletionTimestamp !== undefined ? { deletionTimestamp } : {}),
  };
}

/** A Namespace answer, which must be the namespace asked about. */
export function readNamespace(object: unknown, name: string): NamespaceInfo {
  return readMetadata(object, 'namespace', name, undefined);
}

/** A ServiceAccount answer, which must be the one asked about, in the namespace asked about. */
export function readServiceAccount(object: unknown, namespace: string, name: string): ServiceAccountInfo {
  return { ...readMetadata(object, 'serviceaccount', name, namespace), namespace };
}

/** A Pod answer: its metadata and `status.phase`. */
export function readPod(object: unknown, namespace: string, name: string): PodInfo {
  const info = readMetadata(object, 'pod', name, namespace);
  const status = isRecord(object) ? object['status'] : undefined;
  const phase = isRecord(status) ? status['phase'] : undefined;
  if (phase !== undefined && phase !== null && typeof phase !== 'string') throw new UnexpectedAnswerError('pod status.phase is not a string');
  return { ...info, namespace, ...(typeof phase === 'string' ? { phase } : {}) };
}

function singleExtra(extra: Record<string, unknown>, key: string): string | undefined {
  const value = extra[key];
  if (value === undefined || value === null) return undefined;
  // kube-apiserver sets exactly one value; anything else is not a binding the broker can trust.
  if (!Array.isArray(value) || value.length !== 1 || typeof value[0] !== 'string') {
    throw new UnexpectedAnswerError(`status.user.extra["${key}"] is not a single string`);
  }
  return value[0];
}

/** A TokenReview answer's `status`, with the pod binding from `user.extra`. */
export function readTokenReview(object: unknown): TokenReviewResult {
  if (!isRecord(object) || !isRecord(object['status'])) throw new UnexpectedAnswerError('TokenReview without status');
  const status = object['status'];
  const authenticated = status['authenticated'] ?? false;
  if (typeof authenticated !== 'boolean') throw new UnexpectedAnswerError('status.authenticated is not a boolean');
  const audiences = status['audiences'] ?? [];
  if (!Array.isArray(audiences) || !audiences.every((item): item is string => typeof item === 'string')) {
    throw new UnexpectedAnswerError('status.audiences is not a list of strings');
  }
  const user = status['user'] ?? {};
  if (!isRecord(user)) throw new UnexpectedAnswerError('status.user is not an object');
  const username = user['username'];
  if (username !== undefined && username !== null && typeof username !== 'string') throw new UnexpectedAnswerError('status.user.username is not a string');
  const extra = user['extra'] ?? {};
  if (!isRecord(extra)) throw new UnexpectedAnswerError('status.user.extra is not an object');
  const podName = singleExtra(extra, EXTRA_POD_NAME);
  const podUid = singleExtra(extra, EXTRA_POD_UID);
  const error = status['error'];
  return {
    authenticated,
    audiences: [...audiences],
    ...(typeof username === 'string' && username !== '' ? { username } : {}),
    ...(podName !== undefined ? { podName } : {}),
    ...(podUid !== undefined ? { podUid } : {}),
    ...(typeof error === 'string' && error !== '' ? { error } : {}),
  };
}

function parseBody(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** The `Status` body of a 404: only a real NotFound counts, not any 404 a proxy in the way might send. */
export function isNotFoundStatus(body: unknown): boolean {
  const parsed = parseBody(body);
  return isRecord(parsed) && parsed['kind'] === 'Status' && parsed['reason'] === 'NotFound';
}

/** The API server's own words from a `Status` body, shortened for a log line; '' when it has none. */
export function statusMessage(body: unknown): string {
  // Only a string body is read: anything else may be an object the client built, not the server's words.
  if (typeof body !== 'string') return '';
  const parsed = parseBody(body);
  // Not JSON: say nothing rather than echo arbitrary bytes.
  return isRecord(parsed) && typeof parsed['message'] === 'string' ? `: ${parsed['message'].slice(0, 200)}` : '';
}
