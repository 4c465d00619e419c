import { invalidRequest } from '../errors.js';
import type { Claims } from '../identity/workload-identity.js';

/** "45s", "4m 12s", "3h 5m": how operators read durations. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 === 0 ? '' : ` ${s % 60}s`}`;
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours < 48) return `${hours}h${minutes === 0 ? '' : ` ${minutes}m`}`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** The timing facts of an accepted subject token, for metrics. */
export interface TokenTiming {
  readonly expiresAt: number;
  readonly issuedAt: number | undefined;
  readonly remainingSeconds: number;
  /** How far `iat`/`nbf` are ahead of the broker's clock (positive: the issuer's clock runs ahead). */
  readonly skewSeconds: number;
}

function numericDate(claims: Claims, name: string): number | undefined {
  const value = claims[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalidRequest('malformed_token', `The subject token's "${name}" claim is not a NumericDate (seconds since the epoch).`);
  }
  return value;
}

/**
 * Checks `exp` (required), `nbf` and `iat` against the broker's clock with the issuer's skew, and says in
 * the error what happened and what usually causes it: most failures of this service are timing, not logic.
 */
export function checkTemporalClaims(claims: Claims, nowSeconds: number, skewSeconds: number): TokenTiming {
  const exp = numericDate(claims, 'exp');
  const nbf = numericDate(claims, 'nbf');
  const iat = numericDate(claims, 'iat');
  if (exp === undefined) {
    throw invalidRequest('missing_claim', 'The subject token has no "exp" claim; only tokens with an expiry are accepted.', {
      facts: { claim: 'exp' },
    });
  }
  const lifetime = iat !== undefined ? exp - iat : undefined;
  const lifetimeText = lifetime !== undefined && lifetime > 0 ? ` Its lifetime was ${formatDuration(lifetime)}.` : '';
  if (nowSeconds - skewSeconds >= exp) {
    const ago = nowSeconds - exp;
    throw invalidRequest(
      'expired',
      `The subject token expired ${formatDuration(ago)} ago.${lifetimeText} ` +
        (ago <= 300
          ? 'A few seconds to minutes usually means the node clock and the broker clock disagree, or the token was read just before the kubelet rotated it.'
          : 'This usually means the step read the projected token file once and kept it longer than its lifetime: re-read the file for every call, the kubelet rewrites it before it expires.'),
      { facts: { expiredForSeconds: ago, ...(lifetime !== undefined && { lifetimeSeconds: lifetime }) } },
    );
  }
  if (nbf !== undefined && nbf - skewSeconds > nowSeconds) {
    const ahead = nbf - nowSeconds;
    throw invalidRequest(
      'not_yet_valid',
      `The subject token is not valid for another ${formatDuration(ahead)} ("nbf" is in the future; allowed clock skew ${skewSeconds}s). The clocks of the issuing cluster and the broker disagree: check NTP on the nodes.`,
      { facts: { skewSeconds: ahead } },
    );
  }
  if (iat !== undefined && iat - skewSeconds > nowSeconds) {
    const ahead = iat - nowSeconds;
    throw invalidRequest(
      'issued_in_future',
      `The subject token was issued ${formatDuration(ahead)} in the future ("iat"; allowed clock skew ${skewSeconds}s). The clocks of the issuing cluster and the broker disagree: check NTP on the nodes.`,
      { facts: { skewSeconds: ahead } },
    );
  }
  const aheadBy = Math.max(iat !== undefined ? iat - nowSeconds : 0, nbf !== undefined ? nbf - nowSeconds : 0, 0);
  return { expiresAt: exp, issuedAt: iat, remainingSeconds: exp - nowSeconds, skewSeconds: aheadBy };
}
