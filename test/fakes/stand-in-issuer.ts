import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { standInServiceAccountUid } from './stand-in-uids.js';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/**
 * A stand-in for a Kubernetes service-account issuer on loopback: it serves real OIDC discovery and a real
 * JWKS over HTTP, and signs tokens with real keys, exactly as kube-apiserver lays them out. Tests control
 * its clock, its keys and whether it answers.
 */
export interface StandInIssuer {
  /** The `iss` value, e.g. http://127.0.0.1:40123 (with a path or trailing slash when asked). */
  readonly issuer: string;
  readonly baseUrl: string;
  readonly discoveryUrl: string;
  readonly jwksUri: string;
  /** Requests received, by path. */
  readonly requests: Map<string, number>;
  /** The current signing key's kid. */
  readonly kid: string;
  /** Claims of a projected service-account token for the broker's audience, at the issuer's clock. */
  projectedClaims(options?: ProjectedTokenOptions): Record<string, unknown>;
  /** Signs arbitrary claims; the header defaults to {alg, kid} of the current key. */
  sign(claims: Record<string, unknown>, options?: { header?: Record<string, unknown>; key?: 'current' | 'unpublished' }): Promise<string>;
  /** projectedClaims + sign. */
  projectedToken(options?: ProjectedTokenOptions & { header?: Record<string, unknown> }): Promise<string>;
  /** Adds a new key and makes it current; the old one stays published unless `dropOld`. */
  rotateKey(options?: { dropOld?: boolean }): Promise<void>;
  /** When false, discovery and JWKS answer 503. */
  setAvailable(available: boolean): void;
  close(): Promise<void>;
}

export interface ProjectedTokenOptions {
  namespace?: string;
  serviceAccount?: string;
  podName?: string;
  podUid?: string;
  /** Default: the stand-in cluster's UID for this service account (standInServiceAccountUid). */
  serviceAccountUid?: string;
  /**
   * Whether the pod is scheduled: the API server then names its node (kubernetes.io.node). `kubectl create token`
   * for a pod no kubelet runs yet gives none. Default: true.
   */
  scheduled?: boolean;
  /**
   * The kubelet's 3607 s tokens are extended to a year with `warnafter` at the original expiry; other lifetimes
   * are not extended and carry no `warnafter`. Default: false.
   */
  extended?: boolean;
  audience?: string | string[];
  /** Seconds of life from iat. Default 3600. */
  lifetimeSeconds?: number;
  /** Shift iat/nbf/exp by this many seconds relative to the clock (negative: in the past). */
  offsetSeconds?: number;
  /** Extra or overriding claims. */
  extra?: Record<string, unknown>;
}

export interface StandInIssuerOptions {
  readonly alg?: 'RS256' | 'ES256' | 'PS256' | 'ES384';
  /** Path appended to the base URL to form the issuer, e.g. '/id/EXAMPLE'. */
  readonly path?: string;
  /** Append a trailing slash to the issuer (AKS style). */
  readonly trailingSlash?: boolean;
  readonly now?: () => number;
  /** Default audience of projected tokens. */
  readonly audience?: string;
}

interface KeyEntry {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function newKey(alg: string): Promise<KeyEntry> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, use: 'sig', alg } };
}

export async function startStandInIssuer(options: StandInIssuerOptions = {}): Promise<StandInIssuer> {
  const alg = options.alg ?? 'RS256';
  const now = options.now ?? Date.now;
  let keys: KeyEntry[] = [await newKey(alg)];
  const unpublished = await newKey(alg);
  let available = true;
  const requests = new Map<string, number>();
  let issuer = '';
  let baseUrl = '';

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    if (!available) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"kind":"Status","code":503}');
      return;
    }
    const prefix = new URL(issuer).pathname.replace(/\/$/, '');
    if (path === `${prefix}/.well-known/openid-configuration`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer,
          jwks_uri: `${baseUrl}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: [alg],
        }),
      );
    } else if (path === '/openid/v1/jwks') {
      res
        .writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=3600' })
        .end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = `${baseUrl}${options.path ?? ''}${options.trailingSlash ? '/' : ''}`;
  const discoveryUrl = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;

  function projectedClaims(o: ProjectedTokenOptions = {}): Record<string, unknown> {
    const namespace = o.namespace ?? 'payments';
    const serviceAccount = o.serviceAccount ?? 'argo-runner';
    const iat = Math.floor(now() / 1000) + (o.offsetSeconds ?? 0);
    const lifetime = o.lifetimeSeconds ?? 3600;
    const audience = o.audience ?? options.audience ?? 'tyk-token-broker';
    return {
      aud: Array.isArray(audience) ? audience : [audience],
      exp: iat + lifetime,
      iat,
      nbf: iat,
      iss: issuer,
      jti: randomUUID(),
      'kubernetes.io': {
        namespace,
        ...(o.scheduled !== false && { node: { name: 'node-a', uid: randomUUID() } }),
        pod: { name: o.podName ?? 'orders-sync-x7k2p-call-api-3149217812', uid: o.podUid ?? randomUUID() },
        serviceaccount: { name: serviceAccount, uid: o.serviceAccountUid ?? standInServiceAccountUid(namespace, serviceAccount) },
        ...(o.extended === true && { warnafter: iat + Math.floor(lifetime * 0.8) }),
      },
      sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
      ...o.extra,
    };
  }

  async function sign(claims: Record<string, unknown>, o: { header?: Record<string, unknown>; key?: 'current' | 'unpublished' } = {}): Promise<string> {
    const key = o.key === 'unpublished' ? unpublished : (keys[keys.length - 1] as KeyEntry);
    const header = { alg, kid: key.kid, ...o.header };
    return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader(header as { alg: string })
      .sign(key.privateKey);
  }

  return {
    get issuer() {
      return issuer;
    },
    baseUrl,
    discoveryUrl,
    jwksUri: `${baseUrl}/openid/v1/jwks`,
    requests,
    get kid() {
      return (keys[keys.length - 1] as KeyEntry).kid;
    },
    projectedClaims,
    sign,
    projectedToken: (o = {}) => sign(projectedClaims(o), o.header !== undefined ? { header: o.header } : {}),
    async rotateKey(o = {}) {
      const next = await newKey(alg);
      keys = o.dropOld ? [next] : [...keys, next];
    },
    setAvailable(value) {
      available = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
