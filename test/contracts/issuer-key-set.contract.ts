import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { compactVerify } from 'jose';
import { BrokerError, type ReasonCode } from '../../src/server/errors.js';
import type { IssuerKeySet } from '../../src/server/issuers/issuer-key-set.js';

/** One adapter under test, over an issuer whose keys the test controls, fresh for each test. */
export interface IssuerKeySetFixture {
  readonly keySet: IssuerKeySet;
  /** The algorithm the issuer signs with, and one its keys cannot verify. */
  readonly alg: string;
  readonly otherAlg: string;
  /** The `kid` of the key the issuer signs with now. */
  currentKid(): string;
  /** A compact JWS signed with the current key. */
  signToken(): Promise<string>;
  /** Publishes a new key beside the old ones and signs with it from now on. */
  rotate(): Promise<void>;
  /** Makes the key source unreadable (an issuer down, a file gone) or readable again. */
  setAvailable(available: boolean): Promise<void>;
  close(): Promise<void>;
}

export interface IssuerKeySetContractOptions {
  readonly create: () => Promise<IssuerKeySetFixture>;
}

async function rejectsWith(promise: Promise<unknown>, code: ReasonCode, status: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BrokerError, `expected BrokerError ${code}, got ${String(error)}`);
    assert.deepEqual({ code: error.code, status: error.status }, { code, status });
    return true;
  });
}

async function verifies(fixture: IssuerKeySetFixture, token: string): Promise<boolean> {
  const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { alg: string; kid?: string };
  for (const key of await fixture.keySet.getKeys(header)) {
    try {
      await compactVerify(token, key, { algorithms: [fixture.alg] });
      return true;
    } catch {
      // another candidate under the same kid may be the one
    }
  }
  return false;
}

/**
 * What every IssuerKeySet must do, wherever the keys come from (a remote JWKS, a file): load on first use, find the
 * key that verifies a real signature, refuse an unknown kid or the wrong algorithm as the caller's error, answer
 * 503 when it never had keys, keep its keys through a failed reload, and change `generation` exactly when the keys
 * change. Registered once per adapter (test/issuers/issuer-key-set.test.ts).
 */
export function registerIssuerKeySetContract(name: string, options: IssuerKeySetContractOptions): void {
  describe(`IssuerKeySet contract: ${name}`, () => {
    const open: IssuerKeySetFixture[] = [];
    after(async () => {
      for (const fixture of open.splice(0)) await fixture.close();
    });
    const create = async (): Promise<IssuerKeySetFixture> => {
      const fixture = await options.create();
      open.push(fixture);
      return fixture;
    };

    it('loads on first use and returns the key that verifies a real signature', async () => {
      const fixture = await create();
      assert.deepEqual([fixture.keySet.loaded, fixture.keySet.lastSuccessAt, fixture.keySet.generation], [false, undefined, 0]);
      assert.equal(await verifies(fixture, await fixture.signToken()), true);
      assert.equal(fixture.keySet.loaded, true);
      assert.equal(typeof fixture.keySet.lastSuccessAt, 'number');
      assert.equal(fixture.keySet.generation, 1);
    });

    it('an unknown kid is the token\'s fault (400 unknown_kid); a known kid for another algorithm is refused too', async () => {
      const fixture = await create();
      await fixture.keySet.refresh();
      await rejectsWith(fixture.keySet.getKeys({ alg: fixture.alg, kid: 'never-published' }), 'unknown_kid', 400);
      await rejectsWith(fixture.keySet.getKeys({ alg: fixture.otherAlg, kid: fixture.currentKid() }), 'unsupported_algorithm', 400);
    });

    it('a reload of the same keys keeps the generation; a rotation changes it, and old and new keys both verify', async () => {
      const fixture = await create();
      const before = await fixture.signToken();
      await fixture.keySet.refresh();
      await fixture.keySet.refresh();
      assert.equal(fixture.keySet.generation, 1);
      await fixture.rotate();
      await fixture.keySet.refresh();
      assert.equal(fixture.keySet.generation, 2);
      assert.equal(await verifies(fixture, await fixture.signToken()), true);
      assert.equal(await verifies(fixture, before), true);
    });

    it('never loaded and the source is down: 503 issuer_unavailable, and refresh() rejects', async () => {
      const fixture = await create();
      await fixture.setAvailable(false);
      await rejectsWith(fixture.keySet.getKeys({ alg: fixture.alg, kid: fixture.currentKid() }), 'issuer_unavailable', 503);
      await assert.rejects(fixture.keySet.refresh());
      assert.equal(fixture.keySet.loaded, false);
    });

    it('the source fails after a load: refresh() rejects, the keys already loaded keep verifying, the generation stays', async () => {
      const fixture = await create();
      const token = await fixture.signToken();
      assert.equal(await verifies(fixture, token), true);
      await fixture.setAvailable(false);
      await assert.rejects(fixture.keySet.refresh());
      assert.equal(await verifies(fixture, token), true);
      assert.deepEqual([fixture.keySet.loaded, fixture.keySet.generation], [true, 1]);
    });
  });
}
