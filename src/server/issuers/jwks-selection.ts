import type { JWK } from 'jose';

/** The key type and curve a JWS algorithm needs (RFC 7518 section 3). */
export function keyTypeForAlgorithm(alg: string): { kty: string; crv?: string } | undefined {
  if (/^(RS|PS)(256|384|512)$/.test(alg)) return { kty: 'RSA' };
  if (alg === 'ES256') return { kty: 'EC', crv: 'P-256' };
  if (alg === 'ES384') return { kty: 'EC', crv: 'P-384' };
  if (alg === 'ES512') return { kty: 'EC', crv: 'P-521' };
  return undefined;
}

export type KeySelection =
  | { readonly found: true; readonly jwks: readonly JWK[] }
  | { readonly found: false; readonly why: 'unknown_kid' | 'incompatible_key' };

/**
 * Picks the verification keys for a JWS header from a key set: exact `kid` match (every key of the set when the
 * header has none), signature use, and a key type, curve and (when the JWK names one) algorithm compatible with
 * the header's `alg`. Every compatible key is a candidate, in the set's order: an issuer may publish two keys under
 * one `kid` during a rotation, and a token without `kid` may be signed by any of its keys. The candidates are
 * bounded by the issuer's own key set. Pure.
 * Distinguishes "no such kid" (refresh may help) from "that kid exists but cannot verify this alg".
 */
export function selectKeys(keys: readonly JWK[], header: { alg: string; kid?: string | undefined }): KeySelection {
  const wanted = keyTypeForAlgorithm(header.alg);
  const candidates = header.kid === undefined ? keys : keys.filter((key) => key.kid === header.kid);
  if (candidates.length === 0) return { found: false, why: 'unknown_kid' };
  const compatible = candidates.filter(
    (key) =>
      wanted !== undefined &&
      key.kty === wanted.kty &&
      (wanted.crv === undefined || key.crv === wanted.crv) &&
      (key.alg === undefined || key.alg === header.alg) &&
      (key.use === undefined || key.use === 'sig') &&
      key.d === undefined,
  );
  if (compatible.length === 0) return { found: false, why: header.kid === undefined ? 'unknown_kid' : 'incompatible_key' };
  return { found: true, jwks: compatible };
}

/** Keeps the well-formed public JWKs of a fetched document; anything else in it is ignored. */
export function parseJwks(document: unknown): JWK[] {
  if (document === null || typeof document !== 'object' || !Array.isArray((document as { keys?: unknown }).keys)) {
    throw new Error('not a JWK Set: no "keys" array');
  }
  return ((document as { keys: unknown[] }).keys).filter(
    (key): key is JWK => key !== null && typeof key === 'object' && typeof (key as JWK).kty === 'string',
  );
}
