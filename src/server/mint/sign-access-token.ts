import { KeyObject, constants, sign, type SignKeyObjectInput, type SigningOptions } from 'node:crypto';
import type { SigningAlgorithm } from '../protocol.js';
import type { SigningKey } from './signing-key.js';

/** A signing key made ready once: its protected header already encoded, its private key a KeyObject. */
export interface PreparedSigner {
  readonly kid: string;
  /** Signs claims as a compact JWS (RFC 7515) whose header is `{alg, kid, typ: "JWT"}`. */
  sign(claims: Record<string, unknown>): Promise<string>;
}

/** RFC 7518 section 3: the hash and the signature encoding of each algorithm the broker signs with. */
interface Jwa {
  readonly hash: string;
  /** Key types that may sign it: `ec:<curve>`, `rsa`, `rsa-pss`. */
  readonly keyTypes: readonly string[];
  readonly options: SigningOptions;
  /**
   * Whether a signature is made on the event loop rather than on libuv's thread pool. An ECDSA signature takes
   * ~30 us of CPU; handing it to the pool and back (a job, a wake-up, a callback) cost 35-120 us more per token in
   * the bench (bench/README.md, issue 18), so it is made in place. An RSA signature takes ~1 ms, which the loop
   * should not wait for: it stays on the pool.
   */
  readonly onEventLoop: boolean;
}

const JWA: Readonly<Record<SigningAlgorithm, Jwa>> = {
  ES256: { hash: 'sha256', keyTypes: ['ec:prime256v1'], options: { dsaEncoding: 'ieee-p1363' }, onEventLoop: true },
  ES384: { hash: 'sha384', keyTypes: ['ec:secp384r1'], options: { dsaEncoding: 'ieee-p1363' }, onEventLoop: true },
  RS256: { hash: 'sha256', keyTypes: ['rsa'], options: { padding: constants.RSA_PKCS1_PADDING }, onEventLoop: false },
  // PS256: salt as long as the hash (RFC 7518 section 3.5).
  PS256: {
    hash: 'sha256',
    keyTypes: ['rsa', 'rsa-pss'],
    options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
    onEventLoop: false,
  },
};

function keyTypeOf(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? 'none';
  return type === 'ec' ? `ec:${key.asymmetricKeyDetails?.namedCurve ?? '?'}` : type;
}

/**
 * Prepares a key for signing: what is the same for every token it signs (the encoded protected header, the
 * KeyObject, the hash and encoding) is worked out here, once, not per token. Throws when the key does not fit its
 * algorithm. ECDSA signs on the event loop, RSA on libuv's thread pool (see `onEventLoop`).
 */
export function prepareSigner(key: SigningKey): PreparedSigner {
  const jwa = JWA[key.alg];
  const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey);
  if (privateKey.type !== 'private' || !jwa.keyTypes.includes(keyTypeOf(privateKey))) {
    throw new Error(`signing key ${key.kid}: a ${keyTypeOf(privateKey)} ${privateKey.type} key cannot sign ${key.alg}`);
  }
  // As jose does (RFC 7518 section 3.3): no RSA key under 2048 bits.
  if ((privateKey.asymmetricKeyDetails?.modulusLength ?? 2048) < 2048) {
    throw new Error(`signing key ${key.kid}: ${key.alg} requires an RSA key of at least 2048 bits`);
  }
  const header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'JWT' })).toString('base64url');
  const input: SignKeyObjectInput = { key: privateKey, ...jwa.options };
  return {
    kid: key.kid,
    sign(claims) {
      const signingInput = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      if (jwa.onEventLoop) {
        try {
          return Promise.resolve(`${signingInput}.${sign(jwa.hash, Buffer.from(signingInput), input).toString('base64url')}`);
        } catch (error) {
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
      }
      return new Promise((resolve, reject) => {
        sign(jwa.hash, Buffer.from(signingInput), input, (error, signature) => {
          if (error !== null) reject(error);
          else resolve(`${signingInput}.${signature.toString('base64url')}`);
        });
      });
    },
  };
}

/** Signs claims as a compact JWT with `kid` and `typ: JWT` in the header, as Tyk's JWKS lookup requires. */
export function signAccessToken(claims: Record<string, unknown>, key: SigningKey): Promise<string> {
  return prepareSigner(key).sign(claims);
}
