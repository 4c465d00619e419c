import type { IssuerConfig } from '../config/schema.js';

/**
 * Where an issuer's keys may come from, and where the broker's own credential may go. Pure.
 *
 * A discovery document is data from the network: if it could name any `jwks_uri`, a wrong or compromised document
 * would choose the keys the broker trusts, move key fetching to plain HTTP, and receive the broker's bearer token.
 * So the discovered address must be https (plain http only on loopback, or with allowInsecureHttp, as for configured
 * URLs) and on an origin the operator configured: the issuer's, the discovery URL's, the jwksUri's, or one listed in
 * `jwksOrigins` (issuers that publish keys on another host, e.g. accounts.google.com on www.googleapis.com).
 */

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** True for localhost, 127.0.0.0/8 and [::1]. */
export function isLoopbackUrl(url: string | URL): boolean {
  const host = new URL(url).hostname;
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The origins the operator configured for an issuer: the only ones its keys and its credential may involve. */
export function configuredKeyOrigins(issuer: IssuerConfig): ReadonlySet<string> {
  const urls = [issuer.issuer, issuer.discoveryUrl, issuer.jwksUri, ...(issuer.jwksOrigins ?? [])];
  return new Set(urls.filter((url): url is string => url !== undefined).map((url) => new URL(url).origin));
}

/** Why a discovered jwks_uri may not be fetched for this issuer, or undefined when it may. */
export function discoveredJwksUriProblem(jwksUri: string, issuer: IssuerConfig): string | undefined {
  let url: URL;
  try {
    url = new URL(jwksUri);
  } catch {
    return 'jwks_uri is not an absolute URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `jwks_uri uses ${url.protocol.replace(/:$/, '')}, not https`;
  if (url.protocol === 'http:' && !issuer.allowInsecureHttp && !isLoopbackUrl(url)) {
    return 'jwks_uri is plain http on a non-loopback host; https is required (or allowInsecureHttp: true)';
  }
  if (url.username !== '' || url.password !== '') return 'jwks_uri carries credentials';
  if (!configuredKeyOrigins(issuer).has(url.origin)) {
    return `jwks_uri is on ${url.origin}, which is not the issuer's origin; list it in the issuer's jwksOrigins if the issuer really publishes its keys there`;
  }
  return undefined;
}
