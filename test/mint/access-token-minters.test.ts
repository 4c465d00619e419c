import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createJwtMinter } from '../../src/server/mint/jwt-minter.js';
import { generateSigningKey, type SigningKey } from '../../src/server/mint/signing-key.js';
import { jwksDocument, type SigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { createTykKeyMinter } from '../../src/server/mint/tyk-key-minter.js';
import { TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { registerAccessTokenMinterContract } from '../contracts/access-token-minter.contract.js';
import { startStandInTyk } from '../fakes/stand-in-tyk.js';

/* Both minters held to one contract: a JWT checked as Tyk checks it (the broker's JWKS), a Tyk key as the Gateway records it. */

registerAccessTokenMinterContract('JWT (ES256, verified against the broker\'s JWKS)', {
  async create() {
    let active: SigningKey | undefined = await generateSigningKey('ES256', Date.now());
    const published = [active];
    const keys: SigningKeySet = { active: () => active, published: () => published };
    return {
      minter: createJwtMinter(keys),
      issuedTokenType: TOKEN_TYPE_JWT,
      async inspect(credential) {
        const { payload } = await jwtVerify(credential, createLocalJWKSet(jwksDocument(keys)), { issuer: 'https://token-broker.test', audience: 'tyk' });
        return { subject: String(payload.sub), policies: String(payload['scope']).split(' '), expiresAt: Number(payload.exp) };
      },
      async disable() {
        active = undefined;
        return 'no_signing_key';
      },
      close: async () => undefined,
    };
  },
});

registerAccessTokenMinterContract('Tyk key (POST /tyk/keys/create on the stand-in Gateway)', {
  async create() {
    const tyk = await startStandInTyk({ secret: 'gateway-secret-for-tests' });
    // The Gateway refuses keys that apply policies it does not have.
    for (const id of ['payments-read', 'status-read']) tyk.addPolicy({ id, name: id, org_id: 'acme', active: true });
    const dir = await mkdtemp(join(tmpdir(), 'tb-minter-'));
    await writeFile(join(dir, 'secret'), 'gateway-secret-for-tests\n');
    return {
      minter: createTykKeyMinter({ gatewayUrl: tyk.url, secretFile: join(dir, 'secret'), orgId: 'acme', timeoutMs: 2000 }, { contextClaim: 'workload' }),
      issuedTokenType: TOKEN_TYPE_ACCESS_TOKEN,
      async inspect(credential) {
        const created = tyk.createdKeys.find((key) => key.key === credential);
        if (created === undefined) throw new Error('the Gateway holds no such key');
        return { subject: created.alias, policies: created.applyPolicies, expiresAt: created.expires };
      },
      async disable() {
        tyk.setDown(true);
        return 'tyk_unavailable';
      },
      async close() {
        await tyk.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
