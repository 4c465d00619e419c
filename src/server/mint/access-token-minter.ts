import type { MintInput } from './access-token-claims.js';

/**
 * Turns a mint input into a credential Tyk accepts: a signed JWT, or a Tyk key created through the Gateway API. A
 * minter reads nothing but the mint input, its generation and the time: that is what the cache key covers.
 */
export interface AccessTokenMinter {
  /** RFC 8693 `issued_token_type` of what this minter produces. */
  readonly issuedTokenType: string;
  /**
   * Identifies what the minted credential depends on besides the grant (the active signing key, for JWTs),
   * so that the cache key changes when it does. Undefined when nothing can mint right now.
   */
  generation(): string | undefined;
  mint(input: MintInput, context: { readonly nowSeconds: number; readonly jti: string }): Promise<string>;
}
