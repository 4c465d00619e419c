import { performance } from 'node:perf_hooks';
import type { ConfigurationOptions, ObservableMiddleware, RequestContext, ResponseContext } from '@kubernetes/client-node';
import { brokerMisconfigured, temporarilyUnavailable, type BrokerError } from '../errors.js';
import type { KubernetesMetadataSource, NamespaceInfo, PodInfo, ServiceAccountInfo } from '../identity/kubernetes-metadata.js';
import { isDnsLabel, isDnsSubdomain } from '../identity/kubernetes-names.js';
import { kubernetesClient, loadKubeConfig, type ClusterConnection } from './kube-config.js';
import {
  UnexpectedAnswerError,
  isNotFoundStatus,
  readNamespace,
  readPod,
  readServiceAccount,
  readTokenReview,
  statusMessage,
} from './kubernetes-answers.js';
import { LOOKUP_PERMISSIONS, permissionName } from './kubernetes-permissions.js';
import { createApiGet } from './api-get.js';
import { KeepAliveAgents } from './keep-alive-agents.js';
import { LookupCache } from './lookup-cache.js';

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
  /** A kubeconfig file, or the in-cluster API server the configuration loader found. */
  readonly connection: ClusterConnection;
  /** How long an answer (found or 404) is reused. 0 disables caching of that kind. */
  readonly cacheSeconds: { readonly namespace: number; readonly serviceAccount: number; readonly pod: number };
  readonly now: () => number;
  /** Upper bound for each API request, connection to body. Default 2000. */
  readonly timeoutMs?: number;
  readonly events?: KubernetesMetadataEvents;
}

const DEFAULT_TIMEOUT_MS = 2000;
const UNAVAILABLE_DESCRIPTION = 'The broker cannot check this workload with the Kubernetes API right now; retry shortly.';
const FORBIDDEN_DESCRIPTION =
  'The broker is not allowed to check this workload with the Kubernetes API: its own credential or RBAC is misconfigured. Retrying will not help; tell the broker\'s operators.';
/** Per object kind; beyond this the least recently used answers go. Keeps memory bounded under churn. */
const MAX_CACHE_ENTRIES = 10_000;

/** No answer within the time limit, or the source was closed while waiting. */
class RequestStoppedError extends Error {}

/** An answer with a status other than success, from either path (a GET of ours, or the client's ApiException). */
class ApiStatusError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${code}`);
  }
}

/** An answer that arrived, parsed as JSON, with its status. */
interface Sent {
  readonly status: number;
  readonly body: unknown;
}

/**
 * A failure in words fit for a log line. No `cause` is kept and parser messages are not quoted: a JSON
 * SyntaxError quotes the body, and bodies can hold secrets (pod env values, the token echoed by a TokenReview).
 */
function describeFailure(error: unknown): string {
  if (error instanceof RequestStoppedError) return error.message;
  if (error instanceof ApiStatusError) return `HTTP ${error.code}${statusMessage(error.body)}`;
  if (error instanceof UnexpectedAnswerError) return `unexpected answer: ${error.message}`;
  if (error instanceof SyntaxError) return 'the answer is not valid JSON';
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

const NOT_FOUND: unique symbol = Symbol('not found');

/**
 * Reads namespaces, service accounts and pods from the Kubernetes API and creates TokenReviews, through
 * @kubernetes/client-node. Every request is bounded by `timeoutMs`; answers (including 404) are cached per object
 * on the injected clock; failures are never cached and surface as 503 `kubernetes_unavailable`.
 * Throws at creation when the kubeconfig cannot be loaded.
 */
export function createKubernetesMetadataSource(options: KubernetesMetadataSourceOptions): KubernetesMetadataSource {
  const { ApiException, AuthenticationV1Api, Observable } = kubernetesClient();
  const kubeConfig = loadKubeConfig(options.connection);
  const authentication = kubeConfig.makeApiClient(AuthenticationV1Api);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const closing = new AbortController();
  // Connections to the API server are reused across lookups (see KeepAliveAgents for why the client does not).
  const agents = new KeepAliveAgents();
  const apiGet = createApiGet(kubeConfig, agents);
  const namespaces = new LookupCache<NamespaceInfo>(options.cacheSeconds.namespace * 1000, options.now, MAX_CACHE_ENTRIES);
  const serviceAccounts = new LookupCache<ServiceAccountInfo>(options.cacheSeconds.serviceAccount * 1000, options.now, MAX_CACHE_ENTRIES);
  const pods = new LookupCache<PodInfo>(options.cacheSeconds.pod * 1000, options.now, MAX_CACHE_ENTRIES);

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
    call: (signal: AbortSignal) => Promise<Sent>,
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
    // A synchronous throw inside a call becomes a rejection like any other failure.
    const sent = new Promise<Sent>((resolve) => resolve(call(abort.signal)));
    sent.catch(() => undefined); // the time limit may win the race; the loser's rejection is expected
    let code = 'error';
    try {
      const answer = await Promise.race([sent, stopped]);
      const parsed = parse(answer.body);
      code = String(answer.status);
      return parsed;
    } catch (error) {
      if (error instanceof ApiStatusError && error.code === 404 && notFoundIsAnswer && isNotFoundStatus(error.body)) {
        code = '404';
        return NOT_FOUND;
      }
      if (error instanceof ApiStatusError) code = String(error.code);
      if (error instanceof RequestStoppedError) abort.abort(); // frees the socket of a request nobody waits for any more
      // The token may come back in a TokenReview answer; a detail is logged, so it must never carry it.
      const raw = `${what}: ${describeFailure(error)}`;
      const detail = secret === undefined ? raw : raw.split(secret).join('[token]');
      // 401 and 403 are answers, not outages: the API server is up and refuses the broker's own credential. They
      // get a reason of their own (and a 500, not a "retry shortly" 503) so a missing permission is not mistaken
      // for an outage; the log names the permission (the detail never carries the token: a 403 body does not).
      if (error instanceof ApiStatusError && (error.code === 401 || error.code === 403)) {
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

  /** A GET of one object, as JSON; any status but 200 is an ApiStatusError for send to classify. */
  function getObject(path: string): (signal: AbortSignal) => Promise<Sent> {
    return async (signal) => {
      const answer = await apiGet(path, signal);
      if (answer.status < 200 || answer.status > 299) throw new ApiStatusError(answer.status, answer.body);
      return { status: answer.status, body: JSON.parse(answer.body) as unknown };
    };
  }

  /**
   * A call through @kubernetes/client-node (TokenReview, rare): its abort signal and the pooled agent set by a
   * middleware, its status read by another, its ApiException turned into the ApiStatusError send classifies.
   */
  function throughClient(call: (callOptions: ConfigurationOptions) => Promise<unknown>): (signal: AbortSignal) => Promise<Sent> {
    return async (signal) => {
      let status = 200;
      const middleware: ObservableMiddleware = {
        pre(context: RequestContext) {
          context.setSignal(signal);
          const fresh = context.getAgent();
          if (fresh !== undefined) context.setAgent(agents.reuse(fresh));
          return new Observable(Promise.resolve(context));
        },
        post(response: ResponseContext) {
          status = response.httpStatusCode;
          return new Observable(Promise.resolve(response));
        },
      };
      try {
        const body = await call({ middleware: [middleware], middlewareMergeStrategy: 'append' });
        return { status, body };
      } catch (error) {
        if (error instanceof ApiException) throw new ApiStatusError(error.code, error.body);
        throw error;
      }
    };
  }

  return {
    getNamespace(name) {
      if (!isDnsLabel(name)) return Promise.resolve(undefined);
      return namespaces.get(name, async () =>
        orUndefined(
          await send(
            'namespaces',
            `GET namespace ${name}`,
            getObject(`/api/v1/namespaces/${name}`),
            (body) => readNamespace(body, name),
            true,
          ),
        ),
      );
    },

    getServiceAccount(namespace, name) {
      if (!isDnsLabel(namespace) || !isDnsSubdomain(name)) return Promise.resolve(undefined);
      return serviceAccounts.get(JSON.stringify([namespace, name]), async () =>
        orUndefined(
          await send(
            'serviceaccounts',
            `GET serviceaccount ${namespace}/${name}`,
            getObject(`/api/v1/namespaces/${namespace}/serviceaccounts/${name}`),
            (body) => readServiceAccount(body, namespace, name),
            true,
          ),
        ),
      );
    },

    getPod(namespace, name, uid) {
      if (!isDnsLabel(namespace) || !isDnsSubdomain(name)) return Promise.resolve(undefined);
      return pods.get(JSON.stringify([namespace, name, uid]), async () =>
        orUndefined(
          await send(
            'pods',
            `GET pod ${namespace}/${name}`,
            getObject(`/api/v1/namespaces/${namespace}/pods/${name}`),
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
        throughClient((callOptions) =>
          authentication.createTokenReview(
            { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } } },
            callOptions,
          ),
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
      agents.destroy();
      namespaces.clear();
      serviceAccounts.clear();
      pods.clear();
    },
  };
}
