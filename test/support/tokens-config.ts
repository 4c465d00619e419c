import type { TokensConfig } from '../../src/server/config/schema.js';

/**
 * The tokens block of the cache-key tests: a `sub` template that reads no Kubernetes fact, so whatever tells two
 * namespaces (or workflows) apart in the cache key can only come from the other minted claims.
 */
export const TOKENS_SUB_ONLY: TokensConfig = {
  audience: 'tyk',
  defaultTtlSeconds: 600,
  maxTtlSeconds: 3600,
  subject: '{issuer}:{sub}',
  policyClaim: 'pol',
  scopeClaim: 'scope',
  contextClaim: 'workload',
  format: 'jwt',
};
