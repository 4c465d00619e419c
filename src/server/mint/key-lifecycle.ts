/**
 * The signing-key lifecycle, computed from timestamps alone (pure: no I/O, no clock of its own).
 *
 * Tyk caches the broker's JWKS (240 s by default) and never refetches on an unknown `kid`, so a key must be
 * published before it signs, and stay published after it stops signing until every token it signed has
 * expired. Each key's state therefore follows from its creation time, the clock and three durations; there is
 * no hand-kept list, and every replica that sees the same files at the same time reaches the same answer.
 *
 *   created ──prePublish──▶ active (the newest key past its window) ──superseded──▶ retiring ──maxTtl+margin──▶ retired
 *   (pending: published,                                              (published, no longer signing)      (dropped from the JWKS)
 *    not signing)
 */

/** Where a key is in its lifecycle. Only `retired` keys are left out of the JWKS. */
export type KeyState = 'pending' | 'active' | 'retiring' | 'retired';

/** What the lifecycle needs to know about a key. */
export interface KeyTimestamps {
  readonly kid: string;
  readonly alg: string;
  /** When the key was created (its metadata `notBefore`, or its file's modification time), ms since the epoch. */
  readonly createdAt: number;
}

/** The durations that drive the lifecycle, in seconds, as configured. */
export interface KeyLifecycleSettings {
  /** How long a new key is published before it signs: longer than Tyk's JWKS cache. */
  readonly prePublishSeconds: number;
  /** The longest lifetime of any minted token: how long a superseded key's tokens can still be presented. */
  readonly maxTokenTtlSeconds: number;
  /** Extra time a superseded key stays published, for clock skew between the broker and Tyk. */
  readonly retireMarginSeconds: number;
}

/** One key's state at the evaluated instant. */
export interface KeyStateInfo {
  readonly state: KeyState;
  /** When the key entered this state (ms). An early-active key (see `KeyStates.activeEarly`) is active since its creation. */
  readonly since: number;
  /** When the key's state next changes (ms); absent for the newest active key and for retired keys. */
  readonly nextTransitionAt?: number;
  /** The state it changes to then. */
  readonly nextState?: KeyState;
}

/** The lifecycle evaluated at one instant. */
export interface KeyStates<K extends KeyTimestamps> {
  /** The key that signs: the newest key past its pending window, else the oldest pending key. Undefined only without keys. */
  readonly active: K | undefined;
  /**
   * True when no key is past its pending window and `active` signs anyway (first deployment, or every older key was
   * removed): Tyk may not have fetched it yet and can refuse its tokens until its JWKS cache expires.
   */
  readonly activeEarly: boolean;
  /** The keys for the JWKS: pending, active and retiring; newest first. */
  readonly published: readonly K[];
  /** Every distinct key by kid, retired ones included. */
  readonly states: ReadonlyMap<string, KeyStateInfo>;
  /** The earliest instant (ms) after `now` at which any state changes; undefined when none will by time alone. */
  readonly nextTransitionAt: number | undefined;
}

/** The lifecycle durations from the configuration's `signing` and `tokens` sections. */
export function keyLifecycleSettings(
  signing: { readonly prePublishSeconds: number; readonly retireMarginSeconds: number },
  tokens: { readonly maxTtlSeconds: number },
): KeyLifecycleSettings {
  return { prePublishSeconds: signing.prePublishSeconds, maxTokenTtlSeconds: tokens.maxTtlSeconds, retireMarginSeconds: signing.retireMarginSeconds };
}

/**
 * Oldest first. Equal creation times are ordered so that the smallest kid counts as the newest, which is what
 * makes every replica pick the same key when timestamps tie (kept from the fixed key set's order).
 */
function oldestFirst<K extends KeyTimestamps>(a: K, b: K): number {
  return a.createdAt - b.createdAt || (a.kid < b.kid ? 1 : a.kid > b.kid ? -1 : 0);
}

/** The same key in two files counts once, from its earliest creation: it has been published since then. */
function distinctByKid<K extends KeyTimestamps>(keys: readonly K[]): K[] {
  const byKid = new Map<string, K>();
  for (const key of keys) {
    const seen = byKid.get(key.kid);
    if (seen === undefined || key.createdAt < seen.createdAt) byKid.set(key.kid, key);
  }
  return [...byKid.values()].sort(oldestFirst);
}

/**
 * Computes every key's state at `now` (ms). Deterministic: the same keys, clock and settings give the same
 * result whatever the input order.
 *
 * With keys k0..kn sorted oldest first and activeFrom(i) = createdAt(i) + prePublish, key i signs from
 * activeFrom(i) until activeFrom(i+1) (its supersession), then stays published for maxTokenTtl + retireMargin.
 * Before any activeFrom has passed, k0 signs: there is never a moment without a signer while a key exists.
 */
export function computeKeyStates<K extends KeyTimestamps>(keys: readonly K[], now: number, settings: KeyLifecycleSettings): KeyStates<K> {
  const sorted = distinctByKid(keys);
  const prePublishMs = settings.prePublishSeconds * 1000;
  const retentionMs = (settings.maxTokenTtlSeconds + settings.retireMarginSeconds) * 1000;
  const activeFrom = sorted.map((key) => key.createdAt + prePublishMs);
  // activeFrom is non-decreasing along `sorted`, so the next key's activeFrom is the moment a key is superseded.
  const supersededAt = sorted.map((_, i) => activeFrom[i + 1] ?? Infinity);

  function stateAt(i: number, t: number): { state: KeyState; since: number; until: number } {
    const created = sorted[i]?.createdAt ?? 0;
    const from = activeFrom[i] ?? Infinity;
    const superseded = supersededAt[i] ?? Infinity;
    if (t >= superseded + retentionMs) return { state: 'retired', since: superseded + retentionMs, until: Infinity };
    if (t >= superseded) return { state: 'retiring', since: superseded, until: superseded + retentionMs };
    if (t >= from) return { state: 'active', since: from, until: superseded };
    // Nothing is past its window yet (k0's is the earliest): the oldest key signs early rather than nobody.
    if (i === 0) return { state: 'active', since: created, until: from };
    return { state: 'pending', since: created, until: from };
  }

  const states = new Map<string, KeyStateInfo>();
  const published: K[] = [];
  let active: K | undefined;
  let nextTransitionAt: number | undefined;
  for (let i = sorted.length - 1; i >= 0; i -= 1) {
    const key = sorted[i];
    if (key === undefined) continue;
    const current = stateAt(i, now);
    const changes = Number.isFinite(current.until);
    const info: KeyStateInfo = changes
      ? { state: current.state, since: current.since, nextTransitionAt: current.until, nextState: stateAt(i, current.until).state }
      : { state: current.state, since: current.since };
    if (changes) nextTransitionAt = Math.min(nextTransitionAt ?? Infinity, current.until);
    states.set(key.kid, Object.freeze(info));
    if (current.state !== 'retired') published.push(key);
    if (current.state === 'active') active = key;
  }
  const activeEarly = sorted.length > 0 && now < (activeFrom[0] ?? Infinity);
  return Object.freeze({ active, activeEarly, published: Object.freeze(published), states, nextTransitionAt });
}
