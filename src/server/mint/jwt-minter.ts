import { temporarilyUnavailable } from '../errors.js';
import { TOKEN_TYPE_JWT } from '../protocol.js';
import { timedAccessTokenClaims, type MintInput } from './access-token-claims.js';
import { prepareSigner, type PreparedSigner } from './sign-access-token.js';
import type { AccessTokenMinter } from './access-token-minter.js';
import type { SigningKeySet } from './signing-key-set.js';
import type { SigningKey } from './signing-key.js';

/** Mints JWTs signed with the active key, which Tyk validates through the broker's JWKS. */
export function createJwtMinter(signingKeys: SigningKeySet): AccessTokenMinter {
  // Each key is prepared on its first mint (header encoded, KeyObject made); rotated-out keys drop out with the key.
  const signers = new WeakMap<SigningKey, PreparedSigner>();
  return {
    issuedTokenType: TOKEN_TYPE_JWT,
    generation: () => signingKeys.active()?.kid,
    async mint(input: MintInput, context) {
      const key = signingKeys.active();
      if (key === undefined) throw temporarilyUnavailable('no_signing_key', 'The broker has no signing key right now; retry shortly.');
      const claims = timedAccessTokenClaims(input, context);
      let signer = signers.get(key);
      if (signer === undefined) signers.set(key, (signer = prepareSigner(key)));
      return signer.sign(claims);
    },
  };
}
