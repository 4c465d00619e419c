import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';

/**
 * An issuer whose tokens are assembled byte by byte: the header and payload are signed exactly as given, so tests
 * can present validly signed JSON that no JSON library would write (duplicate keys, 1e999, a nested JWT). Its
 * public keys are a JWKS file (`issuers[].jwksFile`), so the broker reads them without any network.
 */
export interface RawIssuer {
  readonly issuer: string;
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly jwksFile: string;
  readonly publicJwk: JWK;
  readonly privateKey: KeyObject;
  /** `header.payload.signature` over the exact UTF-8 bytes given. */
  signRaw(headerJson: string, payloadJson: string): string;
  /** Signs `{alg, kid}` (plus `header`) over JSON.stringify(claims). */
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): string;
  close(): Promise<void>;
}

const b64u = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

/** Signs a JWS signing input with a private key as RS256 or ES256 (IEEE P1363 signature for ECDSA). */
export function signJws(alg: 'RS256' | 'ES256', privateKey: KeyObject, signingInput: string): string {
  const signature = cryptoSign('sha256', Buffer.from(signingInput), alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey);
  return signature.toString('base64url');
}

export async function startRawIssuer(options: { issuer: string; alg: 'RS256' | 'ES256' }): Promise<RawIssuer> {
  const { privateKey, publicKey } =
    options.alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const exported = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(exported);
  const publicJwk: JWK = { ...exported, kid, alg: options.alg, use: 'sig' };
  const dir = await mkdtemp(join(tmpdir(), 'tb-raw-issuer-'));
  const jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [publicJwk] }));

  function signRaw(headerJson: string, payloadJson: string): string {
    const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
    return `${input}.${signJws(options.alg, privateKey, input)}`;
  }

  return {
    issuer: options.issuer,
    alg: options.alg,
    kid,
    jwksFile,
    publicJwk,
    privateKey,
    signRaw,
    sign: (claims, header = {}) => signRaw(JSON.stringify({ alg: options.alg, kid, ...header }), JSON.stringify(claims)),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Projected service-account claims for `iss`, at `nowMs`, as the stand-in issuer lays them out. */
export function projectedClaimsFor(
  iss: string,
  nowMs: number,
  o: { namespace?: string; serviceAccount?: string; audience?: string | string[]; podUid?: string; lifetimeSeconds?: number } = {},
): Record<string, unknown> {
  const namespace = o.namespace ?? 'payments';
  const serviceAccount = o.serviceAccount ?? 'argo-runner';
  const iat = Math.floor(nowMs / 1000);
  return {
    aud: o.audience ?? ['tyk-token-broker'],
    exp: iat + (o.lifetimeSeconds ?? 3600),
    iat,
    nbf: iat,
    iss,
    'kubernetes.io': {
      namespace,
      pod: { name: 'orders-sync-x7k2p-call-api-3149217812', uid: o.podUid ?? 'b1f0c7a4-0000-4000-8000-000000000001' },
      serviceaccount: { name: serviceAccount, uid: 'a0c1f7a4-0000-4000-8000-000000000002' },
    },
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
  };
}
