import { check, type DoctorCheck } from './doctor-check.js';

/**
 * Names the pre-publish window and Tyk's cache lifetime have had, newest first: the doctor reads whatever the
 * configuration in hand calls them, so a renamed key degrades to a warning rather than a crash.
 */
const PRE_PUBLISH_KEYS = ['prePublishSeconds', 'publishBeforeSigningSeconds', 'prePublishWindowSeconds'] as const;
const TYK_CACHE_KEYS = ['tykJwksCacheSeconds', 'tykJwksCacheTimeoutSeconds', 'jwksCacheSeconds'] as const;

function firstNumber(section: unknown, keys: readonly string[]): { key: string; value: number } | undefined {
  if (section === null || typeof section !== 'object') return undefined;
  for (const key of keys) {
    const value = (section as Record<string, unknown>)[key];
    if (typeof value === 'number' && Number.isFinite(value)) return { key, value };
  }
  return undefined;
}

/** The pre-publish window in seconds, whatever the signing section calls it; undefined when it has none. */
export function prePublishSecondsOf(signing: unknown): number | undefined {
  return firstNumber(signing, PRE_PUBLISH_KEYS)?.value;
}

/**
 * Judges `signing`'s pre-publish window against Tyk's JWKS cache lifetime. Tyk keeps a fetched JWKS for its cache
 * lifetime and never refetches on an unknown kid, so a key that starts signing sooner after it appeared than that
 * gets "Key not authorized" at Tyk until the cache expires. Reads the section defensively. Pure.
 */
export function assessPrePublishWindow(signing: unknown): DoctorCheck {
  const name = 'pre-publish';
  const prePublish = firstNumber(signing, PRE_PUBLISH_KEYS);
  const tykCache = firstNumber(signing, TYK_CACHE_KEYS);
  if (prePublish === undefined || tykCache === undefined) {
    const missing = [prePublish === undefined ? 'the pre-publish window' : undefined, tykCache === undefined ? 'Tyk\'s JWKS cache lifetime' : undefined].filter(Boolean);
    return check('WARN', name, `cannot find ${missing.join(' and ')} in the signing section`, 'compare the key pre-publish window with Tyk\'s jwks.cache.timeout by hand');
  }
  const text = `signing.${prePublish.key} ${prePublish.value} s vs Tyk's JWKS cache (signing.${tykCache.key}) ${tykCache.value} s`;
  if (prePublish.value <= tykCache.value) {
    return check(
      'WARN',
      name,
      `${text}: a new key can sign before Tyk has fetched it, and Tyk refuses its tokens ("Key not authorized") until its cached JWKS expires`,
      `set signing.${prePublish.key} above ${tykCache.value} plus the time a Secret update takes to reach every replica`,
    );
  }
  return check('OK', name, `${text}: new keys are published before they sign`);
}
