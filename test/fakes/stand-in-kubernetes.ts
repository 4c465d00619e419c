import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { standInServiceAccountUid } from './stand-in-uids.js';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * A stand-in for kube-apiserver on loopback, for the broker's Kubernetes metadata source. It speaks the real
 * REST paths and JSON (v1 objects, `Status` bodies for errors, TokenReview), requires the bearer token of the
 * kubeconfig it writes, and lets tests change the cluster (namespaces, service accounts, pods, Argo pods),
 * decide TokenReviews, take the API down in several ways, and count requests.
 */
export interface StandInKubernetes {
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** The bearer token the server accepts (and writeKubeconfig writes). */
  readonly token: string;
  /** Requests received, keyed `${METHOD} ${path}`, e.g. `GET /api/v1/namespaces/ci/pods/p`. Counted even while down. */
  readonly requests: Map<string, number>;
  /** Requests received for this method and path (0 when none). */
  requestCount(method: string, path: string): number;
  /** Sum of all requests received. */
  totalRequests(): number;
  /** TCP connections accepted so far: how many requests shared one is what a keep-alive client saves. */
  connectionCount(): number;
  /** TokenReview specs received, in order (token and audiences as sent). */
  readonly tokenReviews: TokenReviewSpec[];

  putNamespace(name: string, options?: ObjectOptions): V1Object;
  deleteNamespace(name: string): void;
  putServiceAccount(namespace: string, name: string, options?: ObjectOptions): V1Object;
  deleteServiceAccount(namespace: string, name: string): void;
  /** Creates or replaces a pod; a fresh UID unless one is given (a re-created pod gets a new UID). */
  putPod(namespace: string, name: string, options?: PodOptions): V1Object;
  /** A pod as the Argo controller creates it: workflow/completed labels, node-name/node-id annotations. */
  putArgoPod(options: ArgoPodOptions): V1Object;
  deletePod(namespace: string, name: string): void;
  /** Sets metadata.deletionTimestamp (and a grace period), as a delete with grace does. */
  markTerminating(namespace: string, name: string, at?: string): void;
  /** What the Argo controller does when a step finishes: completed=true and a final phase. */
  markCompleted(namespace: string, name: string, phase?: 'Succeeded' | 'Failed'): void;
  /** What the kubelet does through the status subresource: the phase alone, no Argo label. */
  setPhase(namespace: string, name: string, phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed'): void;

  /** Decides every TokenReview from now on (a throw becomes a 500 InternalError Status). Default: unauthenticated. */
  setTokenReviewer(reviewer: TokenReviewer): void;
  /**
   * false: normal. 'error503': every request gets 503 with a Status body. 'hang': requests are read and never
   * answered. 'reset': the connection is destroyed. 'garbage': 200 with a body that is not JSON.
   */
  setDown(mode: DownMode): void;
  /**
   * RBAC as the real authorizer answers it: requests for these resources get 403 Forbidden with kube-apiserver's
   * Status body (checked before the object is looked up, so a missing object is 403 too). [] grants everything.
   */
  setForbidden(resources: readonly ('namespaces' | 'serviceaccounts' | 'pods' | 'tokenreviews')[]): void;
  /** Writes a kubeconfig (clusters/users/contexts/current-context) for this server; returns its path. */
  writeKubeconfig(dir: string, options?: { token?: string; fileName?: string }): Promise<string>;
  close(): Promise<void>;
}

export type DownMode = 'error503' | 'hang' | 'reset' | 'garbage' | false;

export interface ObjectOptions {
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export interface PodOptions extends ObjectOptions {
  /** status.phase; default Running. */
  phase?: string;
  serviceAccountName?: string;
}

export interface ArgoPodOptions {
  namespace: string;
  workflow: string;
  /** Template name; part of the pod name. Default 'main'. */
  template?: string;
  /** Default `<workflow>-<template>-<10 digits>`, the shape the controller uses. */
  name?: string;
  uid?: string;
  /** Value of workflows.argoproj.io/completed. Default false. */
  completed?: boolean;
  phase?: string;
  /** workflows.argoproj.io/node-name. Default `<workflow>.<template>`. */
  nodeName?: string;
  serviceAccountName?: string;
  /** Extra labels (e.g. copied from spec.podMetadata). */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface TokenReviewSpec {
  readonly token: string;
  readonly audiences: readonly string[];
}

/** The `status` the stand-in answers with. */
export interface TokenReviewDecision {
  authenticated: boolean;
  audiences?: string[];
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
  error?: string;
}

export type TokenReviewer = (spec: TokenReviewSpec) => TokenReviewDecision;

/** A v1 object as JSON: apiVersion, kind, metadata, and spec/status for pods. */
export type V1Object = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
};

/** The TokenReview decision kube-apiserver gives for a valid pod-bound service-account token. */
export function serviceAccountReview(options: {
  namespace: string;
  serviceAccount: string;
  audiences: string[];
  podName?: string;
  podUid?: string;
  serviceAccountUid?: string;
}): TokenReviewDecision {
  const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${randomUUID()}`] };
  if (options.podName !== undefined) extra['authentication.kubernetes.io/pod-name'] = [options.podName];
  if (options.podUid !== undefined) extra['authentication.kubernetes.io/pod-uid'] = [options.podUid];
  return {
    authenticated: true,
    audiences: options.audiences,
    username: `system:serviceaccount:${options.namespace}:${options.serviceAccount}`,
    uid: options.serviceAccountUid ?? randomUUID(),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${options.namespace}`, 'system:authenticated'],
    extra,
  };
}

/** Kubernetes timestamps are RFC 3339 with whole seconds. */
function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function statusBody(code: number, reason: string, message: string, details?: { name: string; kind: string }): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details !== undefined ? { details } : {}),
    code,
  });
}

const MAX_BODY_BYTES = 64 * 1024;

export async function startStandInKubernetes(options: { now?: () => number } = {}): Promise<StandInKubernetes> {
  const now = options.now ?? Date.now;
  const token = `stand-in-${randomBytes(16).toString('hex')}`;
  const requests = new Map<string, number>();
  const tokenReviews: TokenReviewSpec[] = [];
  const namespaces = new Map<string, V1Object>();
  const serviceAccounts = new Map<string, V1Object>();
  const pods = new Map<string, V1Object>();
  let down: DownMode = false;
  let forbidden = new Set<string>();
  const deletedServiceAccounts = new Set<string>();
  /** The user the kubeconfig token stands for, as the real API server names it in a 403. */
  const FORBIDDEN_USER = 'system:serviceaccount:platform:token-broker';
  let reviewer: TokenReviewer = () => ({ authenticated: false, error: '[invalid bearer token, stand-in has no reviewer]' });
  let resourceVersion = 1000;

  const key = (namespace: string, name: string): string => `${namespace}/${name}`;

  function objectOf(kind: string, name: string, namespace: string | undefined, o: ObjectOptions): V1Object {
    resourceVersion += 1;
    return {
      apiVersion: 'v1',
      kind,
      metadata: {
        name,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: o.uid ?? randomUUID(),
        resourceVersion: String(resourceVersion),
        creationTimestamp: rfc3339(now()),
        ...(o.labels !== undefined ? { labels: { ...o.labels } } : {}),
        ...(o.annotations !== undefined ? { annotations: { ...o.annotations } } : {}),
        ...(o.deletionTimestamp !== undefined ? { deletionTimestamp: o.deletionTimestamp, deletionGracePeriodSeconds: 30 } : {}),
      },
    };
  }

  function send(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' }).end(body);
  }

  function readBody(req: IncomingMessage): Promise<string | undefined> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
      req.on('error', () => resolve(undefined));
    });
  }

  async function reviewTokens(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    let parsed: unknown;
    try {
      parsed = raw === undefined ? undefined : JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const spec = typeof parsed === 'object' && parsed !== null ? (parsed as { kind?: unknown; apiVersion?: unknown; spec?: unknown }) : undefined;
    const inner = spec?.spec as { token?: unknown; audiences?: unknown } | undefined;
    if (
      spec === undefined ||
      spec.kind !== 'TokenReview' ||
      spec.apiVersion !== 'authentication.k8s.io/v1' ||
      typeof inner?.token !== 'string' ||
      (inner.audiences !== undefined && !(Array.isArray(inner.audiences) && inner.audiences.every((a) => typeof a === 'string')))
    ) {
      send(res, 400, statusBody(400, 'BadRequest', 'the body of the request was in an unknown format'));
      return;
    }
    const review: TokenReviewSpec = { token: inner.token, audiences: (inner.audiences as string[] | undefined) ?? [] };
    tokenReviews.push(review);
    let decision: TokenReviewDecision;
    try {
      decision = reviewer(review);
    } catch (error) {
      // What kube-apiserver does when an authenticator fails internally (e.g. a webhook): 500 InternalError.
      send(res, 500, statusBody(500, 'InternalError', `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`));
      return;
    }
    const user: Record<string, unknown> = {};
    if (decision.username !== undefined) user['username'] = decision.username;
    if (decision.uid !== undefined) user['uid'] = decision.uid;
    if (decision.groups !== undefined) user['groups'] = decision.groups;
    if (decision.extra !== undefined) user['extra'] = decision.extra;
    send(
      res,
      201,
      JSON.stringify({
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: { token: review.token, ...(review.audiences.length > 0 ? { audiences: review.audiences } : {}) },
        status: {
          // Go's omitempty: false, empty lists and empty strings are left out, as kube-apiserver does.
          ...(decision.authenticated ? { authenticated: true } : {}),
          user,
          ...(decision.audiences !== undefined && decision.audiences.length > 0 ? { audiences: decision.audiences } : {}),
          ...(decision.error !== undefined && decision.error !== '' ? { error: decision.error } : {}),
        },
      }),
    );
  }

  /** kube-apiserver's 403 (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go: forbiddenMessage). */
  function forbiddenBody(verb: string, resource: string, group: string, name: string | undefined, namespace: string | undefined): string {
    const what = name !== undefined ? `${resource} "${name}"` : `${resource}${group === '' ? '' : `.${group}`}`;
    const scope = namespace !== undefined ? ` in the namespace "${namespace}"` : ' at the cluster scope';
    return statusBody(403, 'Forbidden', `${what} is forbidden: User "${FORBIDDEN_USER}" cannot ${verb} resource "${resource}" in API group "${group}"${scope}`, {
      ...(name !== undefined ? { name } : { name: '' }),
      kind: resource,
    });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
    const counted = `${method} ${path}`;
    requests.set(counted, (requests.get(counted) ?? 0) + 1);

    switch (down) {
      case 'hang':
        return; // never answered; the socket stays open until the client gives up or close()
      case 'reset':
        req.socket.destroy();
        return;
      case 'error503':
        send(res, 503, statusBody(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>upstream proxy error</html>');
        return;
      case false:
        break;
    }

    if (req.headers.authorization !== `Bearer ${token}`) {
      send(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      return;
    }

    if (path === '/apis/authentication.k8s.io/v1/tokenreviews') {
      if (forbidden.has('tokenreviews')) {
        send(res, 403, forbiddenBody('create', 'tokenreviews', 'authentication.k8s.io', undefined, undefined));
        return;
      }
      if (method !== 'POST') {
        send(res, 405, statusBody(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
        return;
      }
      void reviewTokens(req, res);
      return;
    }

    const segments = path.split('/').slice(1).map((segment) => decodeURIComponent(segment));
    // /api/v1/namespaces/{ns} or /api/v1/namespaces/{ns}/{pods|serviceaccounts}/{name}
    const isCore = segments[0] === 'api' && segments[1] === 'v1' && segments[2] === 'namespaces';
    const namespace = segments[3];
    let found: V1Object | undefined;
    let notFound: { kind: string; name: string } | undefined;
    if (isCore && namespace !== undefined && namespace !== '' && segments.length === 4) {
      found = namespaces.get(namespace);
      notFound = { kind: 'namespaces', name: namespace };
    } else if (isCore && namespace !== undefined && segments.length === 6 && (segments[4] === 'pods' || segments[4] === 'serviceaccounts') && segments[5] !== '') {
      const name = segments[5] as string;
      found = (segments[4] === 'pods' ? pods : serviceAccounts).get(key(namespace, name));
      notFound = { kind: segments[4] as string, name };
    } else {
      send(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    if (method !== 'GET') {
      send(res, 405, statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
      return;
    }
    if (forbidden.has(notFound.kind)) {
      send(res, 403, forbiddenBody('get', notFound.kind, '', notFound.name, notFound.kind === 'namespaces' ? undefined : namespace));
      return;
    }
    if (found === undefined) {
      send(res, 404, statusBody(404, 'NotFound', `${notFound.kind} "${notFound.name}" not found`, notFound));
      return;
    }
    send(res, 200, JSON.stringify(found));
  }

  const server: Server = createServer(handle);
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function requirePod(namespace: string, name: string): V1Object {
    const pod = pods.get(key(namespace, name));
    if (pod === undefined) throw new Error(`stand-in has no pod ${namespace}/${name}`);
    return pod;
  }

  function putPod(namespace: string, name: string, o: PodOptions = {}): V1Object {
    // A real API server admits a pod only when its service account exists (ServiceAccount admission); the
    // stand-in creates a missing one, with the UID the stand-in issuer puts in its tokens.
    const serviceAccountName = o.serviceAccountName ?? 'default';
    if (!serviceAccounts.has(key(namespace, serviceAccountName))) {
      serviceAccounts.set(key(namespace, serviceAccountName), objectOf('ServiceAccount', serviceAccountName, namespace, { uid: standInServiceAccountUid(namespace, serviceAccountName) }));
    }
    const pod: V1Object = {
      ...objectOf('Pod', name, namespace, o),
      spec: {
        serviceAccountName: o.serviceAccountName ?? 'default',
        nodeName: 'node-a',
        containers: [{ name: 'main', image: 'registry.example/step:1' }],
      },
      status: { phase: o.phase ?? 'Running' },
    };
    pods.set(key(namespace, name), pod);
    return pod;
  }

  return {
    baseUrl,
    token,
    requests,
    requestCount: (method, path) => requests.get(`${method} ${path}`) ?? 0,
    totalRequests: () => [...requests.values()].reduce((sum, n) => sum + n, 0),
    connectionCount: () => connections,
    tokenReviews,

    putNamespace(name, o = {}) {
      const namespace: V1Object = {
        ...objectOf('Namespace', name, undefined, { ...o, labels: { 'kubernetes.io/metadata.name': name, ...o.labels } }),
        spec: { finalizers: ['kubernetes'] },
        status: { phase: o.deletionTimestamp !== undefined ? 'Terminating' : 'Active' },
      };
      namespaces.set(name, namespace);
      return namespace;
    },
    deleteNamespace(name) {
      namespaces.delete(name);
    },
    putServiceAccount(namespace, name, o = {}) {
      // Once deleted, a service account of the same name is a new object with a new UID, as in a real cluster.
      const uid = o.uid ?? (deletedServiceAccounts.has(key(namespace, name)) ? randomUUID() : standInServiceAccountUid(namespace, name));
      const serviceAccount = objectOf('ServiceAccount', name, namespace, { ...o, uid });
      serviceAccounts.set(key(namespace, name), serviceAccount);
      return serviceAccount;
    },
    deleteServiceAccount(namespace, name) {
      serviceAccounts.delete(key(namespace, name));
      deletedServiceAccounts.add(key(namespace, name));
    },
    putPod,
    putArgoPod(o) {
      const template = o.template ?? 'main';
      const suffix = String(1_000_000_000 + (randomBytes(4).readUInt32BE(0) % 3_000_000_000));
      const name = o.name ?? `${o.workflow}-${template}-${suffix}`;
      return putPod(o.namespace, name, {
        ...(o.uid !== undefined ? { uid: o.uid } : {}),
        phase: o.phase ?? (o.completed ? 'Succeeded' : 'Running'),
        ...(o.serviceAccountName !== undefined ? { serviceAccountName: o.serviceAccountName } : {}),
        labels: {
          ...o.labels,
          'workflows.argoproj.io/workflow': o.workflow,
          'workflows.argoproj.io/completed': o.completed ? 'true' : 'false',
        },
        annotations: {
          ...o.annotations,
          'workflows.argoproj.io/node-name': o.nodeName ?? `${o.workflow}.${template}`,
          'workflows.argoproj.io/node-id': `${o.workflow}-${suffix}`,
        },
      });
    },
    deletePod(namespace, name) {
      pods.delete(key(namespace, name));
    },
    markTerminating(namespace, name, at) {
      const pod = requirePod(namespace, name);
      pod.metadata.deletionTimestamp = at ?? rfc3339(now() + 30_000);
      pod.metadata.deletionGracePeriodSeconds = 30;
    },
    setPhase(namespace, name, phase) {
      const pod = requirePod(namespace, name);
      pod.status = { ...pod.status, phase };
    },
    markCompleted(namespace, name, phase = 'Succeeded') {
      const pod = requirePod(namespace, name);
      pod.metadata.labels = { ...pod.metadata.labels, 'workflows.argoproj.io/completed': 'true' };
      pod.status = { ...pod.status, phase };
    },

    setTokenReviewer(next) {
      reviewer = next;
    },
    setForbidden(resources) {
      forbidden = new Set(resources);
    },
    setDown(mode) {
      down = mode;
    },
    async writeKubeconfig(dir, o = {}) {
      const path = join(dir, o.fileName ?? 'kubeconfig.yaml');
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'stand-in',
            // The client only speaks plain HTTP when TLS verification is explicitly off.
            cluster: { server: baseUrl, 'insecure-skip-tls-verify': true },
          },
        ],
        users: [{ name: 'token-broker', user: { token: o.token ?? token } }],
        contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'token-broker', namespace: 'token-broker' } }],
        'current-context': 'stand-in',
        preferences: {},
      };
      await writeFile(path, stringify(config), { mode: 0o600 });
      return path;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
