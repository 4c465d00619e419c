/** An action that runs once, a fixed delay after the last of a burst of triggers. */
export interface Debounced {
  /** Starts the delay again; the action runs when it passes without another trigger. */
  trigger(): void;
  /** Drops a pending run. */
  cancel(): void;
}

/**
 * Debounces file-watch events: one write, rename or Kubernetes `..data` swap fires several events in a few
 * milliseconds, and the files are read once after they stop, not once per event. The timer never keeps the
 * process alive.
 */
export function debounced(action: () => void, delayMs: number): Debounced {
  let timer: NodeJS.Timeout | undefined;
  return {
    trigger() {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        action();
      }, delayMs);
      timer.unref();
    },
    cancel() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
