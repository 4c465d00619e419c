import express, { type Router } from 'express';
import { jwksDocument, type SigningKeySet } from '../mint/signing-key-set.js';
import type { SigningKey } from '../mint/signing-key.js';
import { authorizationServerMetadata, openIdConfiguration } from './broker-metadata.js';

/**
 * Seconds clients may cache the JWKS. Kept short: Tyk applies its own cache (240 s by default) on top,
 * and the key lifecycle pre-publishes new keys for longer than both.
 */
export const JWKS_MAX_AGE_SECONDS = 60;

/**
 * Serializes `build` once per published key list and reuses the string while the list is the same object: key sets
 * hand out one frozen list until their keys or states change, so every Tyk gateway polling the JWKS costs a
 * comparison, not a serialization.
 */
function perPublishedKeys(signingKeys: SigningKeySet, build: (published: readonly SigningKey[]) => unknown): () => string {
  let cached: { readonly published: readonly SigningKey[]; readonly body: string } | undefined;
  return () => {
    const published = signingKeys.published();
    if (cached?.published !== published) cached = { published, body: JSON.stringify(build(published)) };
    return cached.body;
  };
}

/**
 * The broker's public keys and its two discovery documents (see broker-metadata.ts): RFC 8414 metadata for OAuth
 * clients, and the OpenID Connect Discovery document that Tyk and other JWT verifiers read `jwks_uri` from. Neither
 * depends on the keys, so each is serialized once.
 */
export function wellKnownRoutes(publicUrl: string, signingKeys: SigningKeySet): Router {
  const router = express.Router();
  const jwks = perPublishedKeys(signingKeys, (published) => jwksDocument({ active: () => undefined, published: () => published }));
  const oauthMetadata = JSON.stringify(authorizationServerMetadata(publicUrl));
  const oidcMetadata = JSON.stringify(openIdConfiguration(publicUrl));
  router.get('/.well-known/jwks.json', (_req, res) => {
    res.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    res.type('application/jwk-set+json').send(jwks());
  });
  router.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    res.type('application/json').send(oauthMetadata);
  });
  router.get('/.well-known/openid-configuration', (_req, res) => {
    res.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    res.type('application/json').send(oidcMetadata);
  });
  return router;
}
