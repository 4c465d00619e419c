import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarizeCpuProfile } from '../../bench/profile-summary.js';

/*
 * The bench's profile reader (bench/profile-summary.ts), on a hand-built .cpuprofile whose times are known: self
 * time per frame, and the broker's frames by inclusive time, each sample counted once per function even when the
 * function is on its stack twice (recursion).
 */

const BUILT = 'file:///repo/node_modules/.cache/token-broker-bench/out/src/server';

function frame(id: number, functionName: string, url: string, children: number[] = []) {
  return { id, callFrame: { functionName, url, lineNumber: 0, columnNumber: 0, scriptId: '0' }, hitCount: 0, children };
}

const PROFILE = {
  nodes: [
    frame(1, '(root)', '', [2, 6, 7]),
    frame(2, 'exchangeToken', `${BUILT}/exchange/exchange-token.js`, [3, 5]),
    frame(3, 'verifySubjectToken', `${BUILT}/issuers/verify-subject-token.js`, [4]),
    frame(4, 'verifyOneShot', 'node:internal/crypto/sig'),
    frame(5, 'exchangeToken', `${BUILT}/exchange/exchange-token.js`, [8]),
    frame(6, '(idle)', ''),
    frame(7, '(garbage collector)', ''),
    frame(8, 'asJson', 'file:///repo/node_modules/pino/lib/tools.js'),
  ],
  // Sample times (us): verifyOneShot 300, verifySubjectToken 100, exchangeToken (outer) 50, asJson under the
  // recursive exchangeToken 150, GC 400, idle 1000.
  samples: [4, 3, 2, 8, 7, 6],
  timeDeltas: [300, 100, 50, 150, 400, 1000],
};

describe('bench profile summary', () => {
  it('self time per frame and broker frames by inclusive time, as shares of busy time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'profile-summary-'));
    try {
      const file = join(dir, 'miss.cpuprofile');
      writeFileSync(file, JSON.stringify(PROFILE));
      const summary = summarizeCpuProfile(file, 10, 2);
      assert.equal(summary.totalMs, 2);
      assert.equal(summary.busyMs, 1);
      assert.equal(summary.busyUsPerRequest, 500);
      const self = Object.fromEntries(summary.top.map((f) => [f.name, f.selfPercent]));
      assert.equal(self['(garbage collector)'], 40);
      assert.equal(self['verifyOneShot node:internal/crypto/sig:1'], 30);
      const inclusive = Object.fromEntries(summary.brokerInclusive.map((f) => [f.name, f.selfPercent]));
      assert.deepEqual(inclusive, {
        // 300 + 100 + 50 + 150 of 1,000 busy us: the recursive frame counted once per sample.
        'exchangeToken src/server/exchange/exchange-token.js:1': 60,
        'verifySubjectToken src/server/issuers/verify-subject-token.js:1': 40,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
