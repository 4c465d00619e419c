import { readFile } from 'node:fs/promises';
import { temporarilyUnavailable } from '../errors.js';
import { TOKEN_TYPE_ACCESS_TOKEN } from '../protocol.js';
import type { MintInput } from './access-token-claims.js';
import type { AccessTokenMinter } from './access-token-minter.js';
import type { TokensConfig } from '../config/schema.js';

export interface TykKeyMinterSettings {
  /** Base URL of the Tyk Gateway's REST API. */
  readonly gatewayUrl: string;
  /** File holding the Gateway secret (x-tyk-authorization); re-read on every call so a rotated Secret applies. */
  readonly secretFile: string;
  readonly orgId: string;
  readonly timeoutMs: number;
}

/** The Gateway's answer to POST /tyk/keys/create. */
interface CreateKeyResponse {
  readonly key?: unknown;
  readonly status?: unknown;
}

function unavailable(detail: string) {
  return temporarilyUnavailable('tyk_unavailable', 'The broker cannot create a Tyk key right now; retry shortly.', { detail });
}

/**
 * Mints Tyk keys for APIs that use Tyk's own auth tokens instead of JWT: POST /tyk/keys/create with the granted
 * policies and the expiry, through the Gateway REST API. The key is a bearer credential like a JWT: it is
 * cached and audited by its SHA-256 only, and never logged.
 */
export function createTykKeyMinter(settings: TykKeyMinterSettings, tokens: Pick<TokensConfig, 'contextClaim'>, fetchImpl: typeof fetch = fetch): AccessTokenMinter {
  const endpoint = `${settings.gatewayUrl.replace(/\/$/, '')}/tyk/keys/create`;
  return {
    issuedTokenType: TOKEN_TYPE_ACCESS_TOKEN,
    generation: () => `tyk-key:${settings.orgId}`,
    async mint(input: MintInput, context) {
      let secret: string;
      try {
        secret = (await readFile(settings.secretFile, 'utf8')).trim();
      } catch (error) {
        throw unavailable(`cannot read the Tyk secret file: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      const body = {
        org_id: settings.orgId,
        apply_policies: input.policies,
        expires: context.nowSeconds + input.ttlSeconds,
        // The alias is what Tyk analytics show; the same identity string as a JWT's `sub`.
        alias: input.claims.sub,
        // The same workload context a JWT carries, and the jti its audit record names.
        meta_data: { jti: context.jti, ...(input.claims[tokens.contextClaim] as Record<string, string>) },
      };
      let response: Response;
      try {
        response = await fetchImpl(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-tyk-authorization': secret },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(settings.timeoutMs),
          redirect: 'error',
        });
      } catch (error) {
        throw unavailable(`POST /tyk/keys/create failed: ${error instanceof Error ? error.name : 'error'}`);
      }
      if (!response.ok) {
        // The Gateway's message may name policies; it never contains the secret. Keep only its status.
        throw unavailable(`POST /tyk/keys/create answered HTTP ${response.status}`);
      }
      let parsed: CreateKeyResponse;
      try {
        parsed = (await response.json()) as CreateKeyResponse;
      } catch {
        throw unavailable('POST /tyk/keys/create answered with a body that is not JSON');
      }
      if (typeof parsed.key !== 'string' || parsed.key === '') throw unavailable('POST /tyk/keys/create answered without a key');
      return parsed.key;
    },
  };
}
