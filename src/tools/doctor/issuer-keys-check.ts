import type { JWK } from 'jose';
import { check, type DoctorCheck } from './doctor-check.js';

/** What was fetched from (or read for) an issuer: where the keys came from and what they are. */
export interface IssuerKeysFound {
  readonly issuerName: string;
  /** The JWKS URL or file, for the message. */
  readonly source: string;
  readonly keys: readonly JWK[];
  /** kids (or "#index") of keys the runtime could not import as verification keys. */
  readonly unusable: readonly string[];
}

/** Only this many kids are named in one line; the rest are counted. */
const KIDS_SHOWN = 3;

function describeKids(keys: readonly JWK[]): string {
  const kids = keys.map((key, i) => key.kid ?? `#${i}`);
  const shown = kids.slice(0, KIDS_SHOWN).join(', ');
  return kids.length > KIDS_SHOWN ? `${shown}, +${kids.length - KIDS_SHOWN} more` : shown;
}

/**
 * Judges an issuer's key set: subject tokens can only be verified with public RSA or EC keys that carry a `kid`
 * (Kubernetes always sets one), and a key set holding private key material is a leak at the issuer. Pure.
 */
export function assessIssuerKeys(found: IssuerKeysFound): DoctorCheck {
  const name = `issuer ${found.issuerName}`;
  const leaking = found.keys.filter((key) => key.d !== undefined);
  if (leaking.length > 0) {
    return check('FAIL', name, `${found.source} publishes private key material (${describeKids(leaking)})`, 'rotate those keys at the issuer now; a published private key lets anyone mint subject tokens');
  }
  const usable = found.keys.filter((key, i) => (key.kty === 'RSA' || key.kty === 'EC') && !found.unusable.includes(key.kid ?? `#${i}`));
  if (usable.length === 0) {
    return check(
      'FAIL',
      name,
      `${found.source} has no usable verification key (${found.keys.length} key(s)${found.unusable.length > 0 ? `, unusable: ${found.unusable.join(', ')}` : ''})`,
      'point jwksUri or jwksFile at the issuer\'s key set (kubectl get --raw /openid/v1/jwks)',
    );
  }
  const summary = `${usable.length} key(s) from ${found.source} (${describeKids(usable)})`;
  if (found.unusable.length > 0) {
    return check('WARN', name, `${summary}; cannot use ${found.unusable.join(', ')}`, 'tokens signed with those keys will be refused; check the issuer\'s key types');
  }
  return check('OK', name, summary);
}
