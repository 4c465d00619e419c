import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, type ReasonCode } from '../../src/server/errors.js';
import type { MintInput } from '../../src/server/mint/access-token-claims.js';
import type { AccessTokenMinter } from '../../src/server/mint/access-token-minter.js';
import { mintInputOf } from '../../src/server/mint/access-token-claims.js';
import { TOKENS_SUB_ONLY } from '../support/tokens-config.js';
import { PAYMENTS_RUNNER } from '../support/workload-identities.js';

/** What the relying party (Tyk) learns from a credential, read the way it reads it. */
export interface CredentialAsSeen {
  readonly subject: string;
  readonly policies: readonly string[];
  /** Unix seconds. */
  readonly expiresAt: number;
}

/** One adapter under test with its relying party, fresh for each test. */
export interface AccessTokenMinterFixture {
  readonly minter: AccessTokenMinter;
  /** The RFC 8693 token type this adapter promises. */
  readonly issuedTokenType: string;
  /** Reads a credential as the relying party does; rejects when the party would not accept it. */
  inspect(credential: string): Promise<CredentialAsSeen>;
  /** Takes away what minting needs (the signing key, the Gateway) and names the refusal that follows. */
  disable(): Promise<ReasonCode>;
  close(): Promise<void>;
}

export interface AccessTokenMinterContractOptions {
  readonly create: () => Promise<AccessTokenMinterFixture>;
}

const INPUT: MintInput = mintInputOf(
  { identity: PAYMENTS_RUNNER, policies: ['payments-read', 'status-read'], audience: 'tyk', ttlSeconds: 300 },
  TOKENS_SUB_ONLY,
  'https://token-broker.test',
);

/**
 * What every AccessTokenMinter must do, whatever it produces (a signed JWT, a Tyk key): a credential the relying
 * party accepts, carrying exactly the mint input's subject, policies and lifetime; a new credential per mint; a
 * generation while it can mint; and a 503, never a credential, when it cannot. Registered once per adapter
 * (test/mint/access-token-minters.test.ts).
 */
export function registerAccessTokenMinterContract(name: string, options: AccessTokenMinterContractOptions): void {
  describe(`AccessTokenMinter contract: ${name}`, () => {
    const open: AccessTokenMinterFixture[] = [];
    after(async () => {
      for (const fixture of open.splice(0)) await fixture.close();
    });
    const create = async (): Promise<AccessTokenMinterFixture> => {
      const fixture = await options.create();
      open.push(fixture);
      return fixture;
    };
    const nowSeconds = Math.floor(Date.now() / 1000);

    it('mints a credential the relying party accepts, with the input\'s subject, policies and lifetime', async () => {
      const fixture = await create();
      assert.equal(fixture.minter.issuedTokenType, fixture.issuedTokenType);
      assert.match(fixture.minter.issuedTokenType, /^urn:ietf:params:oauth:token-type:/);
      const credential = await fixture.minter.mint(INPUT, { nowSeconds, jti: 'jti-1' });
      assert.deepEqual(await fixture.inspect(credential), {
        subject: String(INPUT.claims['sub']),
        policies: ['payments-read', 'status-read'],
        expiresAt: nowSeconds + 300,
      });
    });

    it('every mint is a new credential, and the generation stays while nothing it depends on changes', async () => {
      const fixture = await create();
      const generation = fixture.minter.generation();
      assert.equal(typeof generation, 'string');
      const first = await fixture.minter.mint(INPUT, { nowSeconds, jti: 'jti-a' });
      const second = await fixture.minter.mint(INPUT, { nowSeconds, jti: 'jti-b' });
      assert.notEqual(first, second);
      assert.equal(fixture.minter.generation(), generation);
    });

    it('when it cannot mint: 503 with its reason, and no credential', async () => {
      const fixture = await create();
      const reason = await fixture.disable();
      await assert.rejects(fixture.minter.mint(INPUT, { nowSeconds, jti: 'jti-x' }), (error: unknown) => {
        assert.ok(error instanceof BrokerError, String(error));
        assert.deepEqual({ code: error.code, status: error.status }, { code: reason, status: 503 });
        return true;
      });
    });
  });
}
