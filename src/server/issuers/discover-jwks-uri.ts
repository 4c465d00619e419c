import * as oidc from 'openid-client';
import type { IssuerConfig } from '../config/schema.js';
import type { IssuerFetch } from './issuer-fetch.js';
import { discoveredJwksUriProblem } from './key-origins.js';

/** The discovery document address: configured, or {issuer}/.well-known/openid-configuration. */
export function discoveryUrlOf(issuer: IssuerConfig): string {
  return issuer.discoveryUrl ?? `${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/**
 * Fetches the issuer's discovery document through openid-client and returns its jwks_uri, which must be https (or
 * loopback) on a configured origin (src/server/issuers/key-origins.ts).
 * The document's `issuer` must equal the configured one exactly (trailing slash included), because
 * that string is what subject tokens carry in `iss`.
 */
export async function discoverJwksUri(issuer: IssuerConfig, fetch: IssuerFetch): Promise<string> {
  const url = new URL(discoveryUrlOf(issuer));
  let configuration: oidc.Configuration;
  try {
    configuration = await oidc.discovery(url, 'workload-token-broker', undefined, undefined, {
      [oidc.customFetch]: fetch,
      timeout: 10,
      ...(url.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
  } catch (error) {
    throw new Error(`discovery at ${url.href} failed: ${describeFailure(error)}`, { cause: error });
  }
  const metadata = configuration.serverMetadata();
  if (metadata.issuer !== issuer.issuer) {
    throw new Error(`discovery at ${url.href} names issuer "${metadata.issuer}", expected "${issuer.issuer}" exactly`);
  }
  if (typeof metadata.jwks_uri !== 'string') throw new Error(`discovery at ${url.href} has no jwks_uri`);
  // The document is network data: it does not get to choose where keys (and the broker's credential) come from.
  const problem = discoveredJwksUriProblem(metadata.jwks_uri, issuer);
  if (problem !== undefined) throw new Error(`discovery at ${url.href}: ${problem}`);
  return metadata.jwks_uri;
}

/**
 * openid-client reports a transport failure as "something went wrong" and a non-200 answer as "unexpected
 * HTTP response status code", keeping the reason in `cause`: name it, so an operator can tell an untrusted
 * CA from a rejected bearer token.
 */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause: unknown = error.cause;
  if (cause instanceof Response) return `${error.message} (HTTP ${cause.status})`;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${error.message}: ${cause.message}${typeof code === 'string' ? ` (${code})` : ''}`;
  }
  return error.message;
}
