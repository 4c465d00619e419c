/** A controllable clock shared by the stand-in issuer and the broker under test. */
export interface TestClock {
  now(): number;
  advance(seconds: number): void;
  set(ms: number): void;
}

export function createTestClock(start = Date.now()): TestClock {
  let current = start;
  return {
    now: () => current,
    advance(seconds) {
      current += seconds * 1000;
    },
    set(ms) {
      current = ms;
    },
  };
}
