import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/**
 * A stand-in for an in-cluster kube-apiserver as a service-account issuer: discovery and JWKS over HTTPS
 * with a certificate from a throwaway private CA, and both answering 401 with a Kubernetes `Status` unless
 * the request carries the expected bearer token (the `system:service-account-issuer-discovery` binding).
 * Keys are real RSA keys; every request is recorded with the Authorization header it carried.
 */

export { generateTestPki, opensslAvailability, type TestPki } from '../support/test-pki.js';
import type { TestPki } from '../support/test-pki.js';

/** One request the stand-in received. */
export interface SeenRequest {
  readonly path: string;
  /** The Authorization header as received, or undefined when there was none. */
  readonly authorization: string | undefined;
  readonly status: number;
}

export interface TlsStandInIssuer {
  /** https://127.0.0.1:PORT, no trailing slash: what discovery names as `issuer`. */
  readonly issuer: string;
  readonly baseUrl: string;
  readonly discoveryUrl: string;
  readonly jwksUri: string;
  /** Every request in order. */
  readonly requests: readonly SeenRequest[];
  /** The current signing key's kid. */
  readonly kid: string;
  /** Only `Authorization: Bearer <token>` gets through; anything else is 401. */
  setExpectedBearer(token: string): void;
  /** Claims of a projected service-account token at `now`; `iss` defaults to this issuer. */
  projectedClaims(options?: { namespace?: string; serviceAccount?: string; iss?: string }): Record<string, unknown>;
  /** Signs the claims with the current RSA key (RS256, kid = JWK thumbprint). */
  sign(claims: Record<string, unknown>): Promise<string>;
  /** Adds a new key and makes it current; the old one stays published unless `dropOld`. */
  rotateKey(options?: { dropOld?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export interface TlsStandInIssuerOptions {
  readonly pki: TestPki;
  readonly expectedBearer: string;
  readonly now: () => number;
  readonly audience: string;
}

interface KeyEntry {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function newRsaKey(): Promise<KeyEntry> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, use: 'sig', alg: 'RS256' } };
}

// What kube-apiserver answers an unauthenticated request with.
const UNAUTHORIZED_STATUS = JSON.stringify({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized',
  reason: 'Unauthorized',
  code: 401,
});

export async function startTlsStandInIssuer(options: TlsStandInIssuerOptions): Promise<TlsStandInIssuer> {
  let keys: KeyEntry[] = [await newRsaKey()];
  let expectedBearer = options.expectedBearer;
  const requests: SeenRequest[] = [];
  let baseUrl = '';

  const server: Server = createServer(
    { cert: readFileSync(options.pki.serverCertFile), key: readFileSync(options.pki.serverKeyFile) },
    (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'https://x').pathname;
      const authorization = req.headers.authorization;
      const reply = (status: number, headers: Record<string, string>, body: string) => {
        requests.push({ path, authorization, status });
        res.writeHead(status, headers).end(body);
      };
      if (authorization !== `Bearer ${expectedBearer}`) {
        reply(401, { 'content-type': 'application/json' }, UNAUTHORIZED_STATUS);
      } else if (path === '/.well-known/openid-configuration') {
        reply(
          200,
          { 'content-type': 'application/json' },
          JSON.stringify({
            issuer: baseUrl,
            jwks_uri: `${baseUrl}/openid/v1/jwks`,
            response_types_supported: ['id_token'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          }),
        );
      } else if (path === '/openid/v1/jwks') {
        reply(
          200,
          { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=3600' },
          JSON.stringify({ keys: keys.map((k) => k.publicJwk) }),
        );
      } else {
        reply(404, { 'content-type': 'application/json' }, '{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}');
      }
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function projectedClaims(o: { namespace?: string; serviceAccount?: string; iss?: string } = {}): Record<string, unknown> {
    const namespace = o.namespace ?? 'payments';
    const serviceAccount = o.serviceAccount ?? 'argo-runner';
    const iat = Math.floor(options.now() / 1000);
    return {
      aud: [options.audience],
      exp: iat + 3600,
      iat,
      nbf: iat,
      iss: o.iss ?? baseUrl,
      jti: randomUUID(),
      'kubernetes.io': {
        namespace,
        node: { name: 'node-a', uid: randomUUID() },
        pod: { name: 'orders-sync-x7k2p-call-api-3149217812', uid: randomUUID() },
        serviceaccount: { name: serviceAccount, uid: randomUUID() },
        warnafter: iat + 2880,
      },
      sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    };
  }

  return {
    issuer: baseUrl,
    baseUrl,
    discoveryUrl: `${baseUrl}/.well-known/openid-configuration`,
    jwksUri: `${baseUrl}/openid/v1/jwks`,
    requests,
    get kid() {
      return (keys[keys.length - 1] as KeyEntry).kid;
    },
    setExpectedBearer(token) {
      expectedBearer = token;
    },
    projectedClaims,
    async sign(claims) {
      const key = keys[keys.length - 1] as KeyEntry;
      return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
        .setProtectedHeader({ alg: 'RS256', kid: key.kid })
        .sign(key.privateKey);
    },
    async rotateKey(o = {}) {
      const next = await newRsaKey();
      keys = o.dropOld ? [next] : [...keys, next];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
