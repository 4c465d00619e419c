import { calculateJwkThumbprint, exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from 'jose';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../protocol.js';

/** A private key the broker signs with, and the public JWK it publishes for it. */
export interface SigningKey {
  /** RFC 7638 JWK thumbprint (SHA-256) of the public key. */
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: CryptoKey | KeyObject;
  /** Public members only, with kid, alg and use: what Tyk looks up by exact kid. */
  readonly publicJwk: Readonly<JWK>;
  /** Where the key came from: a file path, or "ephemeral". */
  readonly source: string;
  /** When the key appeared (file modification time), in ms since the epoch. */
  readonly createdAt: number;
}

async function describe(privateKey: CryptoKey, publicJwk: JWK, alg: SigningAlgorithm, source: string, createdAt: number): Promise<SigningKey> {
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return Object.freeze({ kid, alg, privateKey, publicJwk: Object.freeze({ ...publicJwk, kid, alg, use: 'sig' }), source, createdAt });
}

/** Reads a PKCS#8 PEM private key for `alg`; throws when the key type does not fit the algorithm. */
export async function signingKeyFromPem(pem: string, alg: SigningAlgorithm, source: string, createdAt: number): Promise<SigningKey> {
  const privateKey = await importPKCS8(pem, alg, { extractable: true });
  const publicKey = createPublicKey(pem);
  const publicJwk = await exportJWK(publicKey);
  return describe(privateKey, publicJwk, alg, source, createdAt);
}

/** A key that lives only in this process: dev mode and tests. */
export async function generateSigningKey(alg: SigningAlgorithm, createdAt: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) });
  return describe(privateKey, await exportJWK(publicKey), alg, 'ephemeral', createdAt);
}
