import { KeyObject, constants, verify } from 'node:crypto';
import type { VerificationKey } from './issuer-key-set.js';

/*
 * The JWS signature check of a subject token (RFC 7515 section 5.2, steps 8-9), with node:crypto's one-shot
 * `crypto.verify` on the issuer's public key. jose's compactVerify does the same through WebCrypto, whose every call
 * is a job on the thread pool and a promise: ~100 us of CPU per RS256 token on the bench VM, against ~25 us here. The
 * checks jose makes around the signature are made before this runs, in verifySubjectToken (three base64url segments,
 * an allowed asymmetric `alg`, no `crit` or `b64`, the key chosen by the issuer's key set for that `alg`); the key
 * type is checked again here, so no key can verify an algorithm it was not made for.
 */

/** The curve each ECDSA algorithm signs on, and its signature length (r || s, RFC 7518 section 3.4). */
const ECDSA: Readonly<Record<string, { readonly curve: string; readonly signatureBytes: number }>> = {
  ES256: { curve: 'prime256v1', signatureBytes: 64 },
  ES384: { curve: 'secp384r1', signatureBytes: 96 },
  ES512: { curve: 'secp521r1', signatureBytes: 132 },
};

const RSA_ALGORITHM = /^(RS|PS)(256|384|512)$/;

/** RFC 7518 section 3.3 and 3.5: RSA keys of at least 2048 bits. */
const MIN_RSA_BITS = 2048;

const publicKeys = new WeakMap<object, KeyObject>();

/** The node:crypto form of a key from an issuer key set, converted once per key. */
function publicKeyOf(key: VerificationKey): KeyObject | undefined {
  if (key instanceof Uint8Array) return undefined; // a symmetric secret: never a subject token's key
  let keyObject = publicKeys.get(key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(key);
    publicKeys.set(key, keyObject);
  }
  return keyObject.type === 'public' ? keyObject : undefined;
}

/**
 * True when `signature` is a valid `alg` signature of `signingInput` (the ASCII of `header.payload`) under `key`.
 * False for a wrong signature, and for a key or signature that does not fit `alg`: a token is never accepted on a
 * key of another type, curve or size than its algorithm names. Pure: no I/O, no clock.
 */
export function jwsSignatureValid(alg: string, signingInput: string, signature: Buffer, key: VerificationKey): boolean {
  const publicKey = publicKeyOf(key);
  if (publicKey === undefined) return false;
  try {
    return signatureMatches(alg, Buffer.from(signingInput, 'ascii'), signature, publicKey);
  } catch {
    // OpenSSL refused the input outright (a malformed signature for the key): not a valid signature either.
    return false;
  }
}

function signatureMatches(alg: string, data: Buffer, signature: Buffer, publicKey: KeyObject): boolean {
  const ecdsa = ECDSA[alg];
  if (ecdsa !== undefined) {
    if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== ecdsa.curve) return false;
    if (signature.length !== ecdsa.signatureBytes) return false;
    return verify(`sha${alg.slice(2)}`, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  }
  const rsa = RSA_ALGORITHM.exec(alg);
  if (rsa === null) return false;
  if (publicKey.asymmetricKeyType !== 'rsa' || (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return false;
  const hash = `sha${rsa[2]}`;
  if (rsa[1] === 'RS') return verify(hash, data, publicKey, signature);
  // RSASSA-PSS with MGF1 on the same hash and a salt as long as the hash (RFC 7518 section 3.5).
  return verify(hash, data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
}
