import { hash } from 'node:crypto';
import { invalidRequest, refusalOfIssuer } from '../errors.js';
import { ACCEPTED_SUBJECT_ALGORITHMS, LEGACY_SERVICE_ACCOUNT_ISSUER } from '../protocol.js';
import { checkTemporalClaims, type TokenTiming } from './temporal-claims.js';
import { jwsSignatureValid } from './jws-signature.js';
import type { Claims } from '../identity/workload-identity.js';
import type { TrustedIssuer, TrustedIssuers } from './trusted-issuers.js';
import type { VerifiedTokenCache } from './verified-token-cache.js';

/** Subject tokens larger than this are refused before any parsing. */
export const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024;

/** A subject token whose signature, issuer, audience and times have all been checked. */
export interface VerifiedSubjectToken {
  readonly issuer: TrustedIssuer;
  readonly claims: Claims;
  readonly algorithm: string;
  readonly kid: string | undefined;
  readonly timing: TokenTiming;
  /** SHA-256 of the token (base64url): how audit records and logs refer to it. */
  readonly sha256: string;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw invalidRequest('malformed_token', `The subject token's ${what} is not base64url-encoded JSON.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidRequest('malformed_token', `The subject token's ${what} is not a JSON object.`);
  }
  return value as Record<string, unknown>;
}

function short(value: string): string {
  return value.length > 120 ? `${value.slice(0, 120)}...` : value;
}

/** SHA-256 of a token, base64url: the only form in which tokens appear in logs and audit records. */
export function tokenSha256(token: string): string {
  // One-shot crypto.hash: a third of createHash().update().digest() for a token-sized input, on every request.
  return hash('sha256', token, 'base64url');
}

/** Deep-freezes parsed claims before they are shared between requests by the verified-token cache. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * Verifies a subject token. Order matters: shape and header first (cheap, no key material), then the
 * issuer by exact `iss`, then the signature with that issuer's key, and only then the claims of a token
 * proven authentic. `jku`, `x5u`, `jwk` and `x5c` headers are never used: keys come only from the issuer's
 * configured key set.
 *
 * With `verified`, a token already verified against its issuer's current key set (same SHA-256) skips the
 * signature check and the parsing; its `exp`, `nbf` and `iat` are still checked against the clock every time.
 */
export async function verifySubjectToken(
  token: string,
  issuers: TrustedIssuers,
  now: () => number,
  verified?: VerifiedTokenCache,
): Promise<VerifiedSubjectToken> {
  if (Buffer.byteLength(token, 'utf8') > MAX_SUBJECT_TOKEN_BYTES) {
    throw invalidRequest('token_too_large', `The subject token is larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes.`);
  }
  // Once per request: the verified-token cache key, and how logs and audit records name the token.
  const sha256 = tokenSha256(token);
  const remembered = verified?.get(sha256);
  // Only while its issuer is still trusted as it was: a configuration reload that removed or changed the issuer
  // built another TrustedIssuer (or none), and the token is verified again against what is in force now.
  if (remembered !== undefined && issuers.byIssuer(remembered.issuer.config.issuer) === remembered.issuer) {
    // An expired entry stays: a step retrying with its expired token is refused by the clock alone, not by another
    // signature check. The LRU bound pushes it out like any entry.
    const timing = checkTemporalClaims(remembered.claims, Math.floor(now() / 1000), remembered.issuer.config.clockSkewSeconds);
    return { issuer: remembered.issuer, claims: remembered.claims, algorithm: remembered.algorithm, kid: remembered.kid, timing, sha256 };
  }
  const segments = token.split('.');
  if (segments.length === 5) {
    throw invalidRequest('malformed_token', 'The subject token is a JWE (five segments); a signed JWT (three segments) is required.');
  }
  if (segments.length !== 3 || !segments.every((s, i) => BASE64URL.test(s) || (i === 2 && s === ''))) {
    throw invalidRequest('malformed_token', 'The subject token is not a compact JWS (three base64url segments separated by dots).');
  }
  const [headerSegment = '', payloadSegment = '', signatureSegment = ''] = segments;
  const header = decodeSegment(headerSegment, 'header');
  const alg = header.alg;
  if (typeof alg !== 'string' || !ACCEPTED_SUBJECT_ALGORITHMS.includes(alg)) {
    throw invalidRequest(
      'unsupported_algorithm',
      `The subject token's algorithm ${typeof alg === 'string' ? `"${short(alg)}"` : '(none)'} is not accepted; accepted: ${ACCEPTED_SUBJECT_ALGORITHMS.join(', ')}.`,
    );
  }
  if (header.crit !== undefined || header.b64 !== undefined) {
    throw invalidRequest('malformed_token', 'The subject token\'s header uses JWS extensions ("crit"/"b64") that are not accepted.');
  }
  if (header.kid !== undefined && (typeof header.kid !== 'string' || header.kid.length > 256)) {
    throw invalidRequest('malformed_token', 'The subject token\'s "kid" is not a string of at most 256 characters.');
  }
  if (signatureSegment === '') throw invalidRequest('bad_signature', 'The subject token has no signature.');
  const kid = header.kid as string | undefined;

  const unverified = decodeSegment(payloadSegment, 'payload');
  const iss = unverified.iss;
  if (iss === LEGACY_SERVICE_ACCOUNT_ISSUER || (iss === undefined && 'kubernetes.io/serviceaccount/namespace' in unverified)) {
    throw invalidRequest(
      'legacy_token',
      'The subject token is a legacy Secret-based service-account token (no expiry, no audience). Mount a projected service-account token with the broker\'s audience instead.',
    );
  }
  if (typeof iss !== 'string') throw invalidRequest('missing_claim', 'The subject token has no "iss" claim.', { facts: { claim: 'iss' } });
  const issuer = issuers.byIssuer(iss);
  if (issuer === undefined) {
    throw invalidRequest(
      'unknown_issuer',
      `The subject token's issuer "${short(iss)}" is not trusted by this broker (issuers must match exactly, trailing slash included).`,
    );
  }

  // Read around the key lookup: if the key set changed meanwhile (a first load, a refetch for an unknown kid, a
  // concurrent refresh), which generation the key came from is unknown, and the verification is not remembered.
  const keysGeneration = issuer.keys.generation;
  const candidates = await issuer.keys.getKeys({ alg, kid });
  const keysUnchanged = issuer.keys.generation === keysGeneration;
  const signingInput = `${headerSegment}.${payloadSegment}`;
  const signature = Buffer.from(signatureSegment, 'base64url');
  // Usually one candidate; several when the issuer publishes two keys under one kid, or the token has no kid.
  if (!candidates.some((key) => jwsSignatureValid(alg, signingInput, signature, key))) {
    throw invalidRequest('bad_signature', 'The subject token\'s signature does not verify with its issuer\'s key.');
  }
  // The signature covers exactly the payload segment decoded above: its claims are now authentic.
  const claims = unverified;

  let timing: TokenTiming | undefined;
  let timingRefusal: unknown;
  try {
    timing = checkTemporalClaims(claims, Math.floor(now() / 1000), issuer.config.clockSkewSeconds);
  } catch (error) {
    timingRefusal = error;
  }
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  const forThisBroker = audiences.some((a) => issuer.config.audiences.includes(a));
  // Authentic and addressed to this broker: remembered even when its time is wrong (expired, not yet valid), because
  // every cache hit checks the time again; a token for another audience is never remembered.
  if (verified !== undefined && keysUnchanged && forThisBroker) {
    verified.set(sha256, { issuer, claims: deepFreeze(claims), algorithm: alg, kid, keysGeneration });
  }
  // The time is the caller's first problem to hear about, as before any cache existed.
  if (timing === undefined) throw refusalOfIssuer(timingRefusal, issuer.config.name);
  if (!forThisBroker) {
    throw invalidRequest(
      'audience_mismatch',
      `The subject token's audience ${audiences.length === 0 ? '(none)' : audiences.map((a) => `"${short(a)}"`).join(', ')} is not one this broker accepts for issuer "${issuer.config.name}"; request a projected token with audience ${issuer.config.audiences.map((a) => `"${a}"`).join(' or ')}.`,
      { facts: { issuer: issuer.config.name } },
    );
  }
  return { issuer, claims, algorithm: alg, kid, timing, sha256 };
}
