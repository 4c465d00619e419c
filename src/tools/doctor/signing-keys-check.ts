import type { KeyStates, KeyTimestamps } from '../../server/mint/key-lifecycle.js';
import { check, type DoctorCheck } from './doctor-check.js';

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Judges the signing keys of `signing.keysDir` at one instant: a key must sign, and it should have been
 * published for the pre-publish window first, or Tyk (which never refetches its cached JWKS for an unknown kid)
 * refuses its tokens until its cache expires. Pure.
 */
export function assessSigningKeys(dir: string, states: KeyStates<KeyTimestamps>): DoctorCheck {
  const name = 'signing-keys';
  const { active } = states;
  if (active === undefined) {
    return check('FAIL', name, `no key in ${dir} can sign`, 'create one: token-broker keys generate --alg ALG --out DIR');
  }
  const pending = [...states.states].filter(([, info]) => info.state === 'pending');
  const retiring = [...states.states].filter(([, info]) => info.state === 'retiring');
  const parts = [`active ${active.kid} (${active.alg})`];
  if (pending.length > 0) {
    parts.push(`pending ${pending.map(([kid, info]) => `${kid} (signs from ${info.nextTransitionAt === undefined ? '?' : iso(info.nextTransitionAt)})`).join(', ')}`);
  }
  if (retiring.length > 0) parts.push(`retiring ${retiring.map(([kid]) => kid).join(', ')}`);
  const summary = `${states.published.length} published key(s) in ${dir}: ${parts.join('; ')}`;
  if (states.activeEarly) {
    const since = states.states.get(active.kid)?.nextTransitionAt;
    return check(
      'WARN',
      name,
      `${summary}; ${active.kid} signs before it has been published for signing.prePublishSeconds, so Tyk may refuse its tokens until its cached JWKS expires`,
      since === undefined ? 'wait for the pre-publish window to pass' : `expect refusals until ${iso(since)} at the latest; next time add keys ahead of need`,
    );
  }
  return check('OK', name, summary);
}
