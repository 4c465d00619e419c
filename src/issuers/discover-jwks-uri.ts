import * as oidc from 'openid-client';
import type { IssuerConfig } from '../config/schema.js';
import type { IssuerFetch } from './issuer-fetch.js';

/** The discovery document address: configured, or {issuer}/.well-known/openid-configuration. */
export function discoveryUrlOf(issuer: IssuerConfig): string {
  return issuer.discoveryUrl ?? `${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/**
 * Fetches the issuer's discovery document through openid-client and returns its jwks_uri.
 * The document's `issuer` must equal the configured one exactly (trailing slash included), because
 * that string is what subject tokens carry in `iss`.
 */
export async function discoverJwksUri(issuer: IssuerConfig, fetch: IssuerFetch): Promise<string> {
  const url = new URL(discoveryUrlOf(issuer));
  const configuration = await oidc.discovery(url, 'workload-token-broker', undefined, undefined, {
    [oidc.customFetch]: fetch,
    timeout: 10,
    ...(url.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
  });
  const metadata = configuration.serverMetadata();
  if (metadata.issuer !== issuer.issuer) {
    throw new Error(`discovery at ${url.href} names issuer "${metadata.issuer}", expected "${issuer.issuer}" exactly`);
  }
  if (typeof metadata.jwks_uri !== 'string') throw new Error(`discovery at ${url.href} has no jwks_uri`);
  return metadata.jwks_uri;
}
