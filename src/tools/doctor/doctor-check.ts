/**
 * The outcome of one doctor check: what was checked, how it went, and what to do about it.
 * OK: nothing to do. WARN: works, but something will bite later. FAIL: tokens will not get through.
 */
export type CheckStatus = 'OK' | 'WARN' | 'FAIL';

export interface DoctorCheck {
  readonly status: CheckStatus;
  /** Which part of the chain, stable across runs: `config`, `issuer in-cluster`, `tyk-api orders`, ... */
  readonly name: string;
  /** What was found, in one line. */
  readonly message: string;
  /** What to do, when something is to be done. */
  readonly fix?: string;
}

/** Builds a check; `fix` is left out when undefined so printed and compared checks stay minimal. */
export function check(status: CheckStatus, name: string, message: string, fix?: string): DoctorCheck {
  return fix === undefined ? { status, name, message } : { status, name, message, fix };
}

/** One line per check: `FAIL tyk-policies: missing in Tyk: a, b -> create them ...`. Pure. */
export function formatCheck(result: DoctorCheck): string {
  return `${result.status.padEnd(4)} ${result.name}: ${result.message}${result.fix === undefined ? '' : ` -> ${result.fix}`}`;
}

/** 1 when any check failed, else 0: warnings never fail the run. */
export function exitStatusOf(results: readonly DoctorCheck[]): 0 | 1 {
  return results.some((result) => result.status === 'FAIL') ? 1 : 0;
}
