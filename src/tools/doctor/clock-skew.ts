import { check, type DoctorCheck } from './doctor-check.js';

/** Above this many seconds a clock difference is worth a warning, even when the issuer's tolerance absorbs it. */
export const CLOCK_SKEW_WARN_SECONDS = 5;

/** One HTTP exchange with a server: its `Date` header and when the request left and the answer arrived (ms). */
export interface DateSample {
  readonly date: string | null;
  readonly sentAt: number;
  readonly receivedAt: number;
}

/**
 * The server's clock minus ours, in seconds (positive: the server is ahead), from its `Date` header; undefined
 * without a parsable one. `Date` is truncated to the second, so the server's time is taken as the middle of that
 * second, compared with the middle of the round trip. Pure.
 */
export function clockSkewSeconds(sample: DateSample): number | undefined {
  if (sample.date === null) return undefined;
  const serverMs = Date.parse(sample.date);
  if (Number.isNaN(serverMs)) return undefined;
  return (serverMs + 500 - (sample.sentAt + sample.receivedAt) / 2) / 1000;
}

/**
 * Judges the clock difference with an issuer. Beyond the issuer's `clockSkewSeconds` the broker refuses fresh
 * tokens ("not valid yet") or accepts expired ones; beyond a few seconds Tyk, whose skews are smaller, starts
 * refusing the broker's own fresh tokens ("token used before issued"). Pure.
 */
export function assessClockSkew(issuerName: string, skewSeconds: number | undefined, toleranceSeconds: number): DoctorCheck {
  const name = `clock ${issuerName}`;
  if (skewSeconds === undefined) {
    return check('WARN', name, 'the issuer sent no usable Date header, so the clocks could not be compared', 'check the broker host\'s time sync (NTP) by other means');
  }
  const size = Math.abs(skewSeconds);
  const rounded = Math.round(size * 10) / 10;
  const direction = skewSeconds >= 0 ? 'ahead of' : 'behind';
  const sync = 'synchronise the clocks of the broker host and the cluster (NTP, chrony)';
  if (size > toleranceSeconds) {
    return check(
      'FAIL',
      name,
      `the issuer's clock is ${rounded} s ${direction} the broker's, more than its clockSkewSeconds (${toleranceSeconds}): fresh subject tokens are refused or expired ones accepted`,
      sync,
    );
  }
  if (size > CLOCK_SKEW_WARN_SECONDS) {
    return check('WARN', name, `the issuer's clock is ${rounded} s ${direction} the broker's (tolerated up to ${toleranceSeconds} s, but Tyk tolerates only a few)`, sync);
  }
  return check('OK', name, `the issuer's clock is ${rounded} s ${direction} the broker's`);
}
