import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { signJws } from './raw-issuer.js';

/**
 * A loopback issuer whose discovery document and JWKS a test writes as it likes: a discovery that points its
 * jwks_uri elsewhere, a JWKS with two keys under one kid, a redirect. Every request is recorded with the
 * Authorization header it carried, so a test can prove where the broker's own credential went and where it did not.
 */
export interface KeyServer {
  readonly url: string;
  readonly requests: { readonly path: string; readonly authorization: string | undefined }[];
  /** What GET /.well-known/openid-configuration answers; by default {issuer: url, jwks_uri: url/jwks}. */
  discovery: Record<string, unknown> | undefined;
  /** The keys GET /jwks publishes. */
  keys: JWK[];
  /** When set, GET /jwks answers 302 to this address. */
  redirectJwksTo: string | undefined;
  close(): Promise<void>;
}

export async function startKeyServer(): Promise<KeyServer> {
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', state.url).pathname;
    state.requests.push({ path, authorization: request.headers.authorization });
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (path === '/.well-known/openid-configuration') return json(200, state.discovery ?? { issuer: state.url, jwks_uri: `${state.url}/jwks` });
    if (path === '/jwks') {
      if (state.redirectJwksTo !== undefined) {
        response.writeHead(302, { location: state.redirectJwksTo });
        return response.end();
      }
      return json(200, { keys: state.keys });
    }
    return json(404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state: KeyServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: [],
    discovery: undefined,
    keys: [],
    redirectJwksTo: undefined,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return state;
}

/** An RS256 key pair, its public JWK under `kid` (or none). */
export function rsaKey(kid: string | undefined): { readonly privateKey: KeyObject; readonly jwk: JWK } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const exported = publicKey.export({ format: 'jwk' }) as JWK;
  return { privateKey, jwk: { ...exported, alg: 'RS256', use: 'sig', ...(kid !== undefined && { kid }) } };
}

/** An RS256 JWS over JSON.stringify(claims), with `kid` in the header unless undefined. */
export function signRs256(privateKey: KeyObject, claims: Record<string, unknown>, kid: string | undefined): string {
  const b64u = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  const input = `${b64u({ alg: 'RS256', ...(kid !== undefined && { kid }) })}.${b64u(claims)}`;
  return `${input}.${signJws('RS256', privateKey, input)}`;
}
