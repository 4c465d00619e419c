import { createIssuerFetch, type IssuerFetch } from './issuer-fetch.js';
import { discoverJwksUri } from './discover-jwks-uri.js';
import { configuredKeyOrigins } from './key-origins.js';
import { FileKeySet, RemoteKeySet, type IssuerKeySet, type KeySetEvents } from './issuer-key-set.js';
import type { IssuerConfig } from '../config/schema.js';
import { canonicalJson } from '../config/config-reload.js';

/** A configured issuer with the source of its verification keys. */
export interface TrustedIssuer {
  readonly config: IssuerConfig;
  readonly keys: IssuerKeySet;
}

/** The set of trusted issuers, looked up by the exact `iss` string. */
export interface TrustedIssuers {
  byIssuer(iss: string): TrustedIssuer | undefined;
  readonly all: readonly TrustedIssuer[];
}

export interface TrustedIssuersOptions {
  readonly now: () => number;
  /** Per-issuer hooks, e.g. for JWKS refresh metrics and logs. */
  readonly eventsFor?: (issuerName: string) => KeySetEvents;
  /** Wraps an issuer's HTTP client (discovery and JWKS), e.g. to trace each request. */
  readonly wrapFetch?: ((issuerName: string, fetch: IssuerFetch) => IssuerFetch) | undefined;
}

/**
 * Builds key sources for every configured issuer. Network I/O happens lazily, on refresh or first use. With
 * `previous` (a configuration reload), an issuer configured exactly as before keeps its TrustedIssuer, loaded keys
 * and all, so a reload refetches nothing it already trusts; a new or changed issuer gets a fresh key source.
 */
export function createTrustedIssuers(configs: readonly IssuerConfig[], options: TrustedIssuersOptions, previous?: TrustedIssuers): TrustedIssuers {
  const kept = new Map((previous?.all ?? []).map((issuer) => [canonicalJson(issuer.config), issuer]));
  const all = configs.map((config): TrustedIssuer => {
    const unchanged = kept.get(canonicalJson(config));
    if (unchanged !== undefined) return unchanged;
    const events = options.eventsFor?.(config.name);
    if (config.jwksFile !== undefined) {
      return { config, keys: new FileKeySet(config.jwksFile, options.now, events) };
    }
    const direct = createIssuerFetch({ caFile: config.caFile, bearerTokenFile: config.bearerTokenFile, credentialOrigins: configuredKeyOrigins(config) });
    const fetch = options.wrapFetch?.(config.name, direct) ?? direct;
    let discovered: string | undefined;
    const resolveJwksUri = async (): Promise<string> => {
      if (config.jwksUri !== undefined) return config.jwksUri;
      discovered ??= await discoverJwksUri(config, fetch);
      return discovered;
    };
    return {
      config,
      keys: new RemoteKeySet({ resolveJwksUri, fetch, now: options.now, ...(events !== undefined && { events }) }),
    };
  });
  const index = new Map(all.map((issuer) => [issuer.config.issuer, issuer]));
  return { byIssuer: (iss) => index.get(iss), all };
}
