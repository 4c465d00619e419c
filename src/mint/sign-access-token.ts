import { SignJWT } from 'jose';
import type { SigningKey } from './signing-key.js';

/** Signs claims as a compact JWT with `kid` and `typ: JWT` in the header, as Tyk's JWKS lookup requires. */
export function signAccessToken(claims: Record<string, unknown>, key: SigningKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
}
