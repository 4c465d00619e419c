import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type * as KubernetesClient from '@kubernetes/client-node';
import type { ConfigurationOptions, KubeConfig, ObservableMiddleware, RequestContext, ResponseContext } from '@kubernetes/client-node';
import { brokerMisconfigured, temporarilyUnavailable, type BrokerError } from '../errors.js';
import { LOOKUP_PERMISSIONS, permissionName } from './kubernetes-permissions.js';
import {
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
  type NamespaceInfo,
  type ObjectInfo,
  type PodInfo,
  type ServiceAccountInfo,
  type TokenReviewResult,
} from './kubernetes-objects.js';

/**
 * What the broker asks the Kubernetes API about a workload. Read-only except TokenReview: GET on
 * namespaces, service accounts and pods, CREATE on tokenreviews.
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

export type KubernetesResource = 'namespaces' | 'serviceaccounts' | 'pods' | 'tokenreviews';

export interface KubernetesMetadataEvents {
  /**
   * One call per request sent to the API server (cache hits and collapsed lookups send none). `code` is the
   * HTTP status of a clean answer (200, 201, 404, 401, 503, ...) or 'error' when there was none to classify
   * (network error, timeout, unparsable body). Must not throw; errors are swallowed.
   */
  onRequest?(resource: KubernetesResource, code: string, seconds: number): void;
}

export interface KubernetesMetadataSourceOptions {
  /** A kubeconfig file; without it the in-cluster service account is used (loadFromCluster). */
  readonly kubeconfigPath?: string;
  /** How long an answer (found or 404) is reused. 0 disables caching of that kind. */
  readonly cacheSeconds: { readonly namespace: number; readonly serviceAccount: number; readonly pod: number };
  readonly now: () => number;
  /** Upper bound for each API request, connection to body. Default 2000. */
  readonly timeoutMs?: number;
  readonly events?: KubernetesMetadataEvents;
}

/**
 * @kubernetes/client-node, loaded on first use: it is about 70 MB of resident memory (every API model), which a
 * broker whose issuers use no Kubernetes API should not carry. require() loads it synchronously (Node >= 20.19
 * requires ES modules), so a source is still created, and a bad kubeconfig still refused, at start-up.
 */
let loadedClient: typeof KubernetesClient | undefined;

export function kubernetesClient(): typeof KubernetesClient {
  loadedClient ??= createRequire(import.meta.url)('@kubernetes/client-node') as typeof KubernetesClient;
  return loadedClient;
}

/** Whether @kubernetes/client-node has been loaded into this process (start-up diagnostics and tests). */
export function kubernetesClientLoaded(): boolean {
  return loadedClient !== undefined;
}

const DEFAULT_TIMEOUT_MS = 2000;
const UNAVAILABLE_DESCRIPTION = 'The broker cannot check this workload with the Kubernetes API right now; retry shortly.';
const FORBIDDEN_DESCRIPTION =
  'The broker is not allowed to check this workload with the Kubernetes API: its own credential or RBAC is misconfigured. Retrying will not help; tell the broker\'s operators.';
/** Per object kind; beyond this, expired entries are pruned, then the oldest. Keeps memory bounded under churn. */
const MAX_CACHE_ENTRIES = 10_000;

// Kubernetes object name rules (apimachinery validation). A name outside them cannot exist, and checking it
// first keeps odd strings (e.g. "..", which URL resolution would turn into another path) out of request paths.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isNamespaceName(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL.test(name);
}

function isObjectName(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

/** An answer that arrived but is not what a Kubernetes API server sends. */
class UnexpectedAnswerError extends Error {}

/** No answer within the time limit, or the source was closed while waiting. */
class RequestStoppedError extends Error {}

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

function readPod(object: unknown, namespace: string, name: string): PodInfo {
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

function readTokenReview(object: unknown): TokenReviewResult {
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

/** The `Status` body of a 404: only a real NotFound counts, not any 404 a proxy in the way might send. */
function isNotFoundStatus(body: unknown): boolean {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return false;
    }
  }
  return isRecord(parsed) && parsed['kind'] === 'Status' && parsed['reason'] === 'NotFound';
}

/** The API server's own words from a `Status` body, shortened for a log line. */
function statusMessage(body: unknown): string {
  if (typeof body !== 'string') return '';
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && typeof parsed['message'] === 'string') return `: ${parsed['message'].slice(0, 200)}`;
  } catch {
    // not JSON: say nothing rather than echo arbitrary bytes
  }
  return '';
}

/**
 * A failure in words fit for a log line. No `cause` is kept and parser messages are not quoted: a JSON
 * SyntaxError quotes the body, and bodies can hold secrets (pod env values, the token echoed by a TokenReview).
 */
function describeFailure(error: unknown): string {
  if (error instanceof RequestStoppedError) return error.message;
  if (error instanceof kubernetesClient().ApiException) return `HTTP ${error.code}${statusMessage(error.body)}`;
  if (error instanceof UnexpectedAnswerError) return `unexpected answer: ${error.message}`;
  if (error instanceof SyntaxError) return 'the answer is not valid JSON';
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

const NOT_FOUND: unique symbol = Symbol('not found');

interface CacheEntry<T> {
  readonly value: T | undefined;
  readonly expiresAt: number;
}

/** Answers (found or 404) reused for a lifetime on the injected clock; concurrent loads of one key share a request. */
class ObjectCache<T> {
  private readonly entries = new Map<string, CacheEntry<T>>();
  private readonly inflight = new Map<string, Promise<T | undefined>>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number,
  ) {}

  get(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      if (this.now() < entry.expiresAt) return Promise.resolve(entry.value);
      this.entries.delete(key);
    }
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = load()
        .then((value) => {
          // Only answers are stored; a failure rejects every waiter and the next call tries again.
          if (this.inflight.get(key) === pending) this.store(key, value);
          return value;
        })
        .finally(() => {
          if (this.inflight.get(key) === pending) this.inflight.delete(key);
        });
      this.inflight.set(key, pending);
    }
    return pending;
  }

  clear(): void {
    this.entries.clear();
    this.inflight.clear();
  }

  private store(key: string, value: T | undefined): void {
    if (this.lifetimeMs <= 0) return;
    this.entries.delete(key); // re-insert so Map order stays oldest-first
    this.entries.set(key, { value, expiresAt: this.now() + this.lifetimeMs });
    if (this.entries.size <= MAX_CACHE_ENTRIES) return;
    const now = this.now();
    for (const [k, e] of this.entries) if (now >= e.expiresAt) this.entries.delete(k);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= MAX_CACHE_ENTRIES) break;
      this.entries.delete(k);
    }
  }
}

export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kubeConfig = new (kubernetesClient().KubeConfig)();
  if (kubeconfigPath !== undefined) {
    kubeConfig.loadFromFile(kubeconfigPath);
  } else {
    // loadFromCluster does not check its environment; without these it would aim at https://undefined:undefined.
    if (!process.env['KUBERNETES_SERVICE_HOST'] || !process.env['KUBERNETES_SERVICE_PORT']) {
      throw new Error('Kubernetes API: not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no kubeconfig given');
    }
    kubeConfig.loadFromCluster();
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error(`Kubernetes API: no current cluster in ${kubeconfigPath ?? 'the in-cluster configuration'}`);
  // The client refuses plain HTTP per request unless TLS verification is explicitly off: fail at start-up instead.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error(`Kubernetes API: server ${cluster.server} is plain HTTP; the client only allows that with insecure-skip-tls-verify: true`);
  }
  return kubeConfig;
}

/**
 * Reads namespaces, service accounts and pods from the Kubernetes API and creates TokenReviews, through
 * @kubernetes/client-node. Every request is bounded by `timeoutMs`; answers (including 404) are cached per object
 * on the injected clock; failures are never cached and surface as 503 `kubernetes_unavailable`.
 * Throws at creation when the kubeconfig cannot be loaded.
 */
export function createKubernetesMetadataSource(options: KubernetesMetadataSourceOptions): KubernetesMetadataSource {
  const { ApiException, AuthenticationV1Api, CoreV1Api, Observable } = kubernetesClient();
  const kubeConfig = loadKubeConfig(options.kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const authentication = kubeConfig.makeApiClient(AuthenticationV1Api);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const closing = new AbortController();
  const namespaces = new ObjectCache<NamespaceInfo>(options.cacheSeconds.namespace * 1000, options.now);
  const serviceAccounts = new ObjectCache<ServiceAccountInfo>(options.cacheSeconds.serviceAccount * 1000, options.now);
  const pods = new ObjectCache<PodInfo>(options.cacheSeconds.pod * 1000, options.now);

  function unavailable(detail: string): BrokerError {
    return temporarilyUnavailable('kubernetes_unavailable', UNAVAILABLE_DESCRIPTION, { detail });
  }

  function report(resource: KubernetesResource, code: string, startedAt: number): void {
    try {
      options.events?.onRequest?.(resource, code, (performance.now() - startedAt) / 1000);
    } catch {
      // a metrics hook must never change an answer
    }
  }

  /**
   * Sends one request with a hard deadline. The client has no timeout of its own, so the request's abort signal
   * is set through a middleware and the call is also raced against a timer: even if a layer ignored the
   * signal, the caller is answered in time. `what` names the request for logs; it never includes a token.
   */
  async function send<T>(
    resource: KubernetesResource,
    what: string,
    call: (callOptions: ConfigurationOptions) => Promise<unknown>,
    parse: (body: unknown) => T,
    notFoundIsAnswer: boolean,
    secret?: string,
  ): Promise<T | typeof NOT_FOUND> {
    if (closing.signal.aborted) throw unavailable(`${what}: the Kubernetes metadata source is closed`);
    const startedAt = performance.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const stopped = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new RequestStoppedError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      onClose = () => reject(new RequestStoppedError('the Kubernetes metadata source is closed'));
      closing.signal.addEventListener('abort', onClose, { once: true });
    });
    let status: number | undefined;
    const middleware: ObservableMiddleware = {
      pre(context: RequestContext) {
        context.setSignal(abort.signal);
        return new Observable(Promise.resolve(context));
      },
      post(response: ResponseContext) {
        status = response.httpStatusCode;
        return new Observable(Promise.resolve(response));
      },
    };
    // A synchronous throw inside the client becomes a rejection like any other failure.
    const sent = new Promise<unknown>((resolve) => resolve(call({ middleware: [middleware], middlewareMergeStrategy: 'append' })));
    sent.catch(() => undefined); // the time limit may win the race; the loser's rejection is expected
    let code = 'error';
    try {
      const body = await Promise.race([sent, stopped]);
      const parsed = parse(body);
      code = String(status ?? 200);
      return parsed;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404 && notFoundIsAnswer && isNotFoundStatus(error.body)) {
        code = '404';
        return NOT_FOUND;
      }
      if (error instanceof ApiException) code = String(error.code);
      if (error instanceof RequestStoppedError) abort.abort(); // frees the socket of a request nobody waits for any more
      // The token may come back in a TokenReview answer; a detail is logged, so it must never carry it.
      const raw = `${what}: ${describeFailure(error)}`;
      const detail = secret === undefined ? raw : raw.split(secret).join('[token]');
      // 401 and 403 are answers, not outages: the API server is up and refuses the broker's own credential. They
      // get a reason of their own (and a 500, not a "retry shortly" 503) so a missing permission is not mistaken
      // for an outage; the log names the permission (the detail never carries the token: a 403 body does not).
      if (error instanceof ApiException && (error.code === 401 || error.code === 403)) {
        const permission = permissionName(LOOKUP_PERMISSIONS[resource]);
        const problem = error.code === 401 ? 'the API server does not accept the broker\'s credential (expired or revoked token, wrong kubeconfig user)' : `the broker needs "${permission}" (see deploy/kubernetes/base/rbac.yaml)`;
        throw brokerMisconfigured('kubernetes_forbidden', FORBIDDEN_DESCRIPTION, {
          detail: `${detail}; ${problem}`,
          facts: { permission, apiStatus: error.code },
        });
      }
      throw unavailable(detail);
    } finally {
      clearTimeout(timer);
      if (onClose !== undefined) closing.signal.removeEventListener('abort', onClose);
      report(resource, code, startedAt);
    }
  }

  function orUndefined<T>(value: T | typeof NOT_FOUND): T | undefined {
    return value === NOT_FOUND ? undefined : value;
  }

  return {
    getNamespace(name) {
      if (!isNamespaceName(name)) return Promise.resolve(undefined);
      return namespaces.get(name, async () =>
        orUndefined(
          await send(
            'namespaces',
            `GET namespace ${name}`,
            (callOptions) => core.readNamespace({ name }, callOptions),
            (body) => readMetadata(body, 'namespace', name, undefined),
            true,
          ),
        ),
      );
    },

    getServiceAccount(namespace, name) {
      if (!isNamespaceName(namespace) || !isObjectName(name)) return Promise.resolve(undefined);
      return serviceAccounts.get(JSON.stringify([namespace, name]), async () =>
        orUndefined(
          await send(
            'serviceaccounts',
            `GET serviceaccount ${namespace}/${name}`,
            (callOptions) => core.readNamespacedServiceAccount({ namespace, name }, callOptions),
            (body) => ({ ...readMetadata(body, 'serviceaccount', name, namespace), namespace }),
            true,
          ),
        ),
      );
    },

    getPod(namespace, name, uid) {
      if (!isNamespaceName(namespace) || !isObjectName(name)) return Promise.resolve(undefined);
      return pods.get(JSON.stringify([namespace, name, uid]), async () =>
        orUndefined(
          await send(
            'pods',
            `GET pod ${namespace}/${name}`,
            (callOptions) => core.readNamespacedPod({ namespace, name }, callOptions),
            (body) => readPod(body, namespace, name),
            true,
          ),
        ),
      );
    },

    async reviewToken(token, audiences) {
      const result = await send(
        'tokenreviews',
        `CREATE tokenreview (audiences ${JSON.stringify(audiences)})`,
        (callOptions) =>
          authentication.createTokenReview(
            { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } } },
            callOptions,
          ),
        readTokenReview,
        false,
        token,
      );
      // notFoundIsAnswer is false, so a 404 already threw; this narrows the type.
      if (result === NOT_FOUND) throw unavailable('CREATE tokenreview: HTTP 404');
      return result;
    },

    close() {
      closing.abort();
      namespaces.clear();
      serviceAccounts.clear();
      pods.clear();
    },
  };
}
