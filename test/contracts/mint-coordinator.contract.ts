import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { MintCoordinator } from '../../src/server/cache/mint-coordinator.js';
import type { CachedToken } from '../../src/server/cache/token-cache.js';

/** One adapter under test, fresh for each test. */
export interface MintCoordinatorFixture {
  readonly coordinator: MintCoordinator;
  close(): Promise<void>;
}

export interface MintCoordinatorContractOptions {
  readonly create: () => Promise<MintCoordinatorFixture>;
  /** A reason to skip the whole suite (no redis-server here, outside CI). */
  readonly skip?: string | undefined;
  readonly before?: () => Promise<void>;
  readonly after?: () => Promise<void>;
}

function token(name: string): CachedToken {
  return { token: `eyJ.${name}.sig`, expiresAt: 2_000_000_000, jti: `jti-${name}`, policies: ['payments-read'] };
}

/** A key shaped like the real ones, unique per call so cases never share a lock. */
const freshKey = (): string => Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');

/** A mint that counts its calls and answers once `release` is called, so callers can pile up behind it. */
function heldMint(result: () => Promise<CachedToken>) {
  let calls = 0;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return {
    get calls() {
      return calls;
    },
    release: () => release(),
    mint: async () => {
      calls += 1;
      await gate;
      return result();
    },
  };
}

/**
 * What every MintCoordinator must do, in one process or across replicas: concurrent requests for one cache key
 * mint once and share the result, different keys never wait for each other, and a failed mint is nobody's token
 * and no lasting state. Registered once per adapter (test/cache/mint-coordinator.test.ts).
 */
export function registerMintCoordinatorContract(name: string, options: MintCoordinatorContractOptions): void {
  describe(`MintCoordinator contract: ${name}`, { skip: options.skip ?? false }, () => {
    let fixture: MintCoordinatorFixture;
    if (options.before !== undefined) before(options.before);
    if (options.after !== undefined) after(options.after);

    async function withFixture(body: (coordinator: MintCoordinator) => Promise<void>): Promise<void> {
      fixture = await options.create();
      try {
        await body(fixture.coordinator);
      } finally {
        await fixture.close();
      }
    }

    it('20 concurrent requests for one key: one mint, one request reports it minted, all get its token', () =>
      withFixture(async (coordinator) => {
        const key = freshKey();
        const held = heldMint(async () => token('once'));
        const requests = Array.from({ length: 20 }, () => coordinator.obtain(key, held.mint));
        await new Promise((resolve) => setTimeout(resolve, 20));
        held.release();
        const obtained = await Promise.all(requests);
        assert.equal(held.calls, 1);
        assert.equal(obtained.filter((each) => each.mintedHere).length, 1);
        assert.ok(obtained.every((each) => each.token.jti === 'jti-once'));
      }));

    it('different keys mint independently: a slow mint of one never holds back another', () =>
      withFixture(async (coordinator) => {
        const slow = heldMint(async () => token('slow'));
        const pendingSlow = coordinator.obtain(freshKey(), slow.mint);
        const fast = await coordinator.obtain(freshKey(), async () => token('fast'));
        assert.deepEqual({ jti: fast.token.jti, mintedHere: fast.mintedHere }, { jti: 'jti-fast', mintedHere: true });
        slow.release();
        assert.equal((await pendingSlow).token.jti, 'jti-slow');
      }));

    it('a failed mint rejects every request that waited on it, and the next request mints afresh', () =>
      withFixture(async (coordinator) => {
        const key = freshKey();
        const failing = heldMint(() => Promise.reject(new Error('signing key unavailable')));
        const requests = Array.from({ length: 5 }, () => coordinator.obtain(key, failing.mint));
        await new Promise((resolve) => setTimeout(resolve, 20));
        failing.release();
        const settled = await Promise.allSettled(requests);
        assert.ok(settled.every((each) => each.status === 'rejected' && (each.reason as Error).message === 'signing key unavailable'));
        assert.equal(failing.calls, 1);
        const retried = await coordinator.obtain(key, async () => token('retry'));
        assert.deepEqual({ jti: retried.token.jti, mintedHere: retried.mintedHere }, { jti: 'jti-retry', mintedHere: true });
      }));

    it('not a cache: once a mint is over, the next request for the key mints again (the caller caches)', () =>
      withFixture(async (coordinator) => {
        const key = freshKey();
        await coordinator.obtain(key, async () => token('first'));
        const second = await coordinator.obtain(key, async () => token('second'));
        assert.deepEqual({ jti: second.token.jti, mintedHere: second.mintedHere }, { jti: 'jti-second', mintedHere: true });
      }));
  });
}
