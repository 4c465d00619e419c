import express, { type Router } from 'express';
import { GRANT_TYPE_TOKEN_EXCHANGE } from '../protocol.js';
import { jwksDocument, type SigningKeySet } from '../mint/signing-key-set.js';
import type { SigningKey } from '../mint/signing-key.js';

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

/** The broker's own discovery document and public keys, which Tyk fetches. */
export function wellKnownRoutes(publicUrl: string, signingKeys: SigningKeySet): Router {
  const router = express.Router();
  const base = publicUrl.replace(/\/$/, '');
  const jwks = perPublishedKeys(signingKeys, (published) => jwksDocument({ active: () => undefined, published: () => published }));
  const discovery = perPublishedKeys(signingKeys, (published) => ({
    issuer: publicUrl,
    jwks_uri: `${base}/.well-known/jwks.json`,
    token_endpoint: `${base}/token`,
    grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
    token_endpoint_auth_methods_supported: ['none'],
    id_token_signing_alg_values_supported: [...new Set(published.map((k) => k.alg))],
    response_types_supported: ['token'],
    subject_types_supported: ['public'],
  }));
  router.get('/.well-known/jwks.json', (_req, res) => {
    res.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    res.type('application/jwk-set+json').send(jwks());
  });
  router.get('/.well-known/openid-configuration', (_req, res) => {
    res.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    res.type('application/json').send(discovery());
  });
  return router;
}
