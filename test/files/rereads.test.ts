import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { debounced } from '../../src/server/files/debounced.js';
import { serializeRereads } from '../../src/server/files/serialized-rereads.js';

describe('serializeRereads', () => {
  it('never overlaps two reads, and a request during a read gets one more read after it', async () => {
    let running = 0;
    let maxRunning = 0;
    let reads = 0;
    const gates: (() => void)[] = [];
    const { rescan, settled } = serializeRereads(async () => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      reads += 1;
      await new Promise<void>((resolve) => gates.push(resolve));
      running -= 1;
      return true;
    });
    const first = rescan();
    // Three requests while the first read runs coalesce into exactly one more.
    const second = rescan();
    const third = rescan();
    assert.equal(second, third, 'requests made during a read share the queued one');
    gates.shift()?.();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reads, 2);
    gates.shift()?.();
    assert.equal(await second, true);
    await settled();
    assert.equal(reads, 2);
    assert.equal(maxRunning, 1);
  });

  it('a failed read does not wedge later ones', async () => {
    let calls = 0;
    const { rescan } = serializeRereads(async () => {
      calls += 1;
      if (calls === 1) throw new Error('unreadable');
      return true;
    });
    await assert.rejects(rescan(), /unreadable/);
    assert.equal(await rescan(), true);
  });
});

describe('debounced', () => {
  it('runs once, the delay after the last of a burst of triggers; cancel drops a pending run', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let runs = 0;
      const action = debounced(() => {
        runs += 1;
      }, 250);
      action.trigger();
      mock.timers.tick(200);
      action.trigger();
      mock.timers.tick(200);
      assert.equal(runs, 0, 'a trigger starts the delay again');
      mock.timers.tick(50);
      assert.equal(runs, 1);
      action.trigger();
      action.cancel();
      mock.timers.tick(1000);
      assert.equal(runs, 1);
    } finally {
      mock.timers.reset();
    }
  });
});
