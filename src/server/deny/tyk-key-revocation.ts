import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BrokerConfig } from '../config/schema.js';
import type { CachedToken, TokenCache } from '../cache/token-cache.js';
import { DENY_FACETS, type Deny } from './deny.js';
import type { TykKeyRevocation } from './deny-operations.js';

/**
 * Whether a cached token is one the deny covers: its jti when the deny names one, and its holder's facets for the
 * others. A token without a recorded holder (JWT mode) is covered only by a deny naming its jti alone. Pure.
 */
export function denyCoversToken(deny: Deny, token: CachedToken): boolean {
  if (deny.match.jti !== undefined && deny.match.jti !== token.jti) return false;
  for (const facet of DENY_FACETS) {
    if (facet === 'jti') continue;
    const wanted = deny.match[facet];
    if (wanted === undefined) continue;
    if (token.holder === undefined || token.holder[facet] !== wanted) return false;
  }
  return true;
}

/**
 * What a new deny does to tokens already issued. Every cached token it covers leaves the cache (so it is not served
 * again after the deny ends); in tyk-key mode each one's key is also deleted from the Gateway with DELETE
 * /tyk/keys/{key}, so it stops working at once. Covers the tokens still in the cache: a key in its last
 * cache.refreshBeforeSeconds of life, or whose cache write was lost, is not found (it expires at Tyk on its own).
 */
export function createIssuedTokenRevoker(
  config: Pick<BrokerConfig, 'tokens' | 'tyk'>,
  cache: TokenCache,
  logger: Logger,
  fetchImpl: typeof fetch = fetch,
): (deny: Deny) => Promise<TykKeyRevocation | undefined> {
  const tyk = config.tokens.format === 'tyk-key' ? config.tyk : undefined;
  return async (deny) => {
    // In JWT mode only a deny naming a jti concerns the cache: a workload deny refuses before the cache is asked.
    if (tyk === undefined && deny.match.jti === undefined) return undefined;
    const taken = await cache.takeWhere((token) => denyCoversToken(deny, token));
    if (taken === undefined) logger.warn({ denyId: deny.id }, 'the token cache could not be scanned completely: some issued tokens of the deny may still be cached');
    if (tyk === undefined) return undefined;
    let secret: string;
    try {
      secret = (await readFile(tyk.secretFile, 'utf8')).trim();
    } catch (error) {
      logger.error({ denyId: deny.id, code: (error as NodeJS.ErrnoException).code }, 'cannot read the Tyk secret file: no issued key of the deny was deleted');
      return { deleted: 0, failed: taken?.length ?? 0 };
    }
    let deleted = 0;
    let failed = 0;
    const base = tyk.gatewayUrl.replace(/\/$/, '');
    for (const token of taken ?? []) {
      try {
        const response = await fetchImpl(`${base}/tyk/keys/${encodeURIComponent(token.token)}`, {
          method: 'DELETE',
          headers: { 'x-tyk-authorization': secret },
          signal: AbortSignal.timeout(tyk.timeoutMs),
          redirect: 'error',
        });
        await response.arrayBuffer().catch(() => undefined);
        // 404: the Gateway no longer holds it (expired, or deleted by another replica): gone all the same.
        if (response.ok || response.status === 404) deleted++;
        else {
          failed++;
          logger.error({ denyId: deny.id, jti: token.jti, status: response.status }, 'the Tyk Gateway refused to delete an issued key');
        }
      } catch (error) {
        failed++;
        logger.error({ denyId: deny.id, jti: token.jti, error: error instanceof Error ? error.name : 'error' }, 'cannot reach the Tyk Gateway to delete an issued key');
      }
    }
    return { deleted, failed };
  };
}
