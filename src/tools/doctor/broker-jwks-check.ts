import { check, type DoctorCheck } from './doctor-check.js';

/** The kids the broker should be publishing, from its keys directory; undefined when that could not be read. */
export interface ExpectedBrokerKeys {
  readonly active: string;
  /** Keys that will sign next: they must already be published. */
  readonly pending: readonly string[];
  /** Keys whose tokens may still be presented. */
  readonly retiring: readonly string[];
}

/**
 * Judges the JWKS the running broker serves against the keys directory: Tyk can only verify tokens whose kid it
 * finds there, so the active key must be in it, and pending ones should be before they start signing. Pure.
 */
export function assessBrokerJwks(url: string, servedKids: readonly string[], expected: ExpectedBrokerKeys | undefined): DoctorCheck {
  const name = 'broker-jwks';
  const served = new Set(servedKids);
  if (expected === undefined) {
    return check('WARN', name, `${url} serves ${servedKids.length} key(s); the keys directory could not be read, so which one should sign is unknown`);
  }
  if (!served.has(expected.active)) {
    return check(
      'FAIL',
      name,
      `${url} does not publish the active key ${expected.active} (it serves ${servedKids.length === 0 ? 'no keys' : servedKids.join(', ')})`,
      'make the broker read the same signing.keysDir (same Secret), or wait for it to re-read the directory',
    );
  }
  const unpublished = [...expected.pending, ...expected.retiring].filter((kid) => !served.has(kid));
  if (unpublished.length > 0) {
    return check(
      'WARN',
      name,
      `${url} publishes the active key ${expected.active} but not ${unpublished.join(', ')} from the keys directory`,
      'check that every replica has the current Secret; Tyk refuses tokens of keys it cannot find',
    );
  }
  return check('OK', name, `${url} publishes the active key ${expected.active} (${servedKids.length} key(s))`);
}
