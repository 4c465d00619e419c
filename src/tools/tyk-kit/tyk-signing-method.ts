import type { SigningAlgorithm } from '../../server/protocol.js';

/** Tyk's `jwt_signing_method` / OAS `signingMethod`: one algorithm family per API. */
export type TykSigningMethod = 'rsa' | 'ecdsa';

/**
 * The Tyk signing family that accepts tokens signed with `algorithm`. A mismatch makes Tyk refuse every
 * token with 403 "Unexpected signing method", so the API definition must follow `signing.algorithm`.
 */
export function tykSigningMethod(algorithm: SigningAlgorithm): TykSigningMethod {
  switch (algorithm) {
    case 'ES256':
    case 'ES384':
      return 'ecdsa';
    case 'RS256':
    case 'PS256':
      // Tyk's `rsa` family verifies RSASSA-PSS as well as PKCS#1 v1.5.
      return 'rsa';
  }
}
