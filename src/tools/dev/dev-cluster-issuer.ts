import express, { type Request, type Response, type Router } from 'express';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { randomBytes, randomUUID } from 'node:crypto';
import { invalidRequest } from '../../server/errors.js';
import { sendError } from '../../server/http/error-response.js';

/** Path under which the dev-mode stand-in cluster issuer is served. */
export const DEV_ISSUER_PATH = '/dev';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface DevClusterIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly routes: Router;
  /** Signs a token shaped like a Kubernetes projected service-account token. */
  mintWorkloadToken(input: { namespace: string; serviceAccount: string; audience?: string; expirationSeconds?: number }): Promise<string>;
}

/**
 * A stand-in for a cluster's service-account issuer, for dev mode only: OIDC discovery, a JWKS and an
 * endpoint that mints demo projected tokens. Its tokens carry the real claim layout (`kubernetes.io` with
 * namespace, service account, pod and node), signed RS256 with a key that lives only in this process.
 */
export async function createDevClusterIssuer(baseUrl: string, audience: string, now: () => number): Promise<DevClusterIssuer> {
  const issuer = `${baseUrl.replace(/\/$/, '')}${DEV_ISSUER_PATH}`;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk: JWK = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const jwks = { keys: [{ ...publicJwk, kid, alg: 'RS256', use: 'sig' }] };

  async function mintWorkloadToken(input: { namespace: string; serviceAccount: string; audience?: string; expirationSeconds?: number }): Promise<string> {
    const iat = Math.floor(now() / 1000);
    const lifetime = input.expirationSeconds ?? 3600;
    const podName = `${input.serviceAccount}-demo-${randomBytes(3).toString('hex')}`.slice(0, 63);
    return new SignJWT({
      aud: [input.audience ?? audience],
      'kubernetes.io': {
        namespace: input.namespace,
        node: { name: 'dev-node', uid: randomUUID() },
        pod: { name: podName, uid: randomUUID() },
        serviceaccount: { name: input.serviceAccount, uid: randomUUID() },
        warnafter: iat + Math.floor(lifetime * 0.8),
      },
    })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(issuer)
      .setSubject(`system:serviceaccount:${input.namespace}:${input.serviceAccount}`)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + lifetime)
      .setJti(randomUUID())
      .sign(privateKey as CryptoKey);
  }

  const routes = express.Router();
  routes.get(`${DEV_ISSUER_PATH}/.well-known/openid-configuration`, (_req, res) => {
    res.json({
      issuer,
      jwks_uri: `${issuer}/openid/v1/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
  });
  routes.get(`${DEV_ISSUER_PATH}/openid/v1/jwks`, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').type('application/jwk-set+json').send(JSON.stringify(jwks));
  });
  routes.post(
    `${DEV_ISSUER_PATH}/workload-token`,
    express.json({ limit: '4kb' }),
    express.urlencoded({ extended: false, limit: '4kb' }),
    async (req: Request, res: Response) => {
      try {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const namespace = body.namespace ?? 'default';
        const serviceAccount = body.serviceAccount ?? 'default';
        if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) throw invalidRequest('invalid_request', '"namespace" must be a DNS label.');
        if (typeof serviceAccount !== 'string' || !DNS_LABEL.test(serviceAccount)) throw invalidRequest('invalid_request', '"serviceAccount" must be a DNS label.');
        const requestedAudience = body.audience;
        if (requestedAudience !== undefined && (typeof requestedAudience !== 'string' || requestedAudience === '')) {
          throw invalidRequest('invalid_request', '"audience" must be a non-empty string.');
        }
        const expiration = body.expirationSeconds === undefined ? undefined : Number(body.expirationSeconds);
        if (expiration !== undefined && (!Number.isInteger(expiration) || expiration < 60 || expiration > 86400)) {
          throw invalidRequest('invalid_request', '"expirationSeconds" must be an integer from 60 to 86400.');
        }
        const token = await mintWorkloadToken({
          namespace,
          serviceAccount,
          ...(typeof requestedAudience === 'string' && { audience: requestedAudience }),
          ...(expiration !== undefined && { expirationSeconds: expiration }),
        });
        res.set('Cache-Control', 'no-store').json({ token });
      } catch (error) {
        sendError(res, error);
      }
    },
  );
  return { issuer, audience, routes, mintWorkloadToken };
}
