/** A re-read that never overlaps itself. */
export interface SerializedRereads {
  /** Runs a re-read now, or once more after the one in progress; calls made meanwhile share that one. */
  rescan(): Promise<boolean>;
  /** Resolves once the re-read in progress, if any, has finished. */
  settled(): Promise<void>;
}

/**
 * Serializes re-reads of watched files: a watch event, the periodic timer and an explicit call may all ask at
 * once, and two reads racing could put an older result in force after a newer one. A request that arrives during
 * a read coalesces into one more read after it, so the latest change is always read.
 */
export function serializeRereads(readOnce: () => Promise<boolean>): SerializedRereads {
  let running: Promise<boolean> | undefined;
  let queued: Promise<boolean> | undefined;
  const start = (): Promise<boolean> => {
    running = readOnce().finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    rescan() {
      if (queued !== undefined) return queued;
      if (running === undefined) return start();
      queued = running.then(() => {
        queued = undefined;
        return start();
      });
      return queued;
    },
    async settled() {
      await running?.catch(() => undefined);
    },
  };
}
