import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { computeKeyStates, keyLifecycleSettings, type KeyLifecycleSettings, type KeyState, type KeyTimestamps } from '../../src/server/mint/key-lifecycle.js';
import { configWarnings, validateConfig } from '../../src/server/config/validate-config.js';

const T = Date.UTC(2025, 0, 1);
const s = (seconds: number) => T + seconds * 1000;
const SETTINGS: KeyLifecycleSettings = { prePublishSeconds: 300, maxTokenTtlSeconds: 3600, retireMarginSeconds: 60 };
/** maxTokenTtl + retireMargin: how long a superseded key stays published. */
const RETENTION = 3660;

const key = (kid: string, createdAtSeconds: number): KeyTimestamps => ({ kid, alg: 'ES256', createdAt: s(createdAtSeconds) });

/** [state, since, nextTransitionAt?, nextState?] with times in seconds after T. */
type Expected = [KeyState, number] | [KeyState, number, number, KeyState];

interface Case {
  readonly name: string;
  readonly keys: readonly KeyTimestamps[];
  readonly now: number;
  readonly settings?: KeyLifecycleSettings;
  readonly active: string | undefined;
  readonly activeEarly?: boolean;
  /** Newest first. */
  readonly published: readonly string[];
  readonly states: Record<string, Expected>;
}

const A = key('kid-a', 0);
const B = key('kid-b', 10_000);
const C = key('kid-c', 10_100);

// A case is its name, what goes in with the expected signer and JWKS, then every key's expected state.
const cases: readonly Case[] = [
  { name: 'no keys: nothing signs, nothing is published', keys: [], now: s(0), active: undefined, published: [], states: {} },
  { name: 'a lone new key signs at once (first deployment), flagged early, until its window ends',
    keys: [A], now: s(0), active: 'kid-a', activeEarly: true, published: ['kid-a'],
    states: { 'kid-a': ['active', 0, 300, 'active'] } },
  { name: 'a lone key 1 ms before its window ends is still early',
    keys: [A], now: s(300) - 1, active: 'kid-a', activeEarly: true, published: ['kid-a'],
    states: { 'kid-a': ['active', 0, 300, 'active'] } },
  { name: 'a lone key at the end of its window is regularly active, with no further transition',
    keys: [A], now: s(300), active: 'kid-a', published: ['kid-a'],
    states: { 'kid-a': ['active', 300] } },
  { name: 'a clock before every key still has a signer',
    keys: [A], now: s(-50), active: 'kid-a', activeEarly: true, published: ['kid-a'],
    states: { 'kid-a': ['active', 0, 300, 'active'] } },
  { name: 'a new key is pending (published, not signing) from its creation',
    keys: [A, B], now: s(10_000), active: 'kid-a', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['active', 300, 10_300, 'retiring'], 'kid-b': ['pending', 10_000, 10_300, 'active'] } },
  { name: 'a new key 1 ms before its window ends is still pending',
    keys: [A, B], now: s(10_300) - 1, active: 'kid-a', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['active', 300, 10_300, 'retiring'], 'kid-b': ['pending', 10_000, 10_300, 'active'] } },
  { name: 'at the end of its window the new key signs and the old one retires',
    keys: [A, B], now: s(10_300), active: 'kid-b', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['retiring', 10_300, 10_300 + RETENTION, 'retired'], 'kid-b': ['active', 10_300] } },
  { name: 'a retiring key 1 ms before maxTtl + margin is still published',
    keys: [A, B], now: s(10_300 + RETENTION) - 1, active: 'kid-b', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['retiring', 10_300, 10_300 + RETENTION, 'retired'], 'kid-b': ['active', 10_300] } },
  { name: 'after maxTtl + margin the old key is retired and leaves the JWKS',
    keys: [A, B], now: s(10_300 + RETENTION), active: 'kid-b', published: ['kid-b'],
    states: { 'kid-a': ['retired', 10_300 + RETENTION], 'kid-b': ['active', 10_300] } },
  { name: 'a key dated in the future waits, published, for its window',
    keys: [A, B], now: s(5_000), active: 'kid-a', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['active', 300, 10_300, 'retiring'], 'kid-b': ['pending', 10_000, 10_300, 'active'] } },
  { name: 'three keys: the middle one signs between the other two windows',
    keys: [A, B, C], now: s(10_350), active: 'kid-b', published: ['kid-c', 'kid-b', 'kid-a'],
    states: { 'kid-a': ['retiring', 10_300, 10_300 + RETENTION, 'retired'], 'kid-b': ['active', 10_300, 10_400, 'retiring'], 'kid-c': ['pending', 10_100, 10_400, 'active'] } },
  { name: 'three keys: each superseded key keeps its own retirement clock',
    keys: [A, B, C], now: s(10_400), active: 'kid-c', published: ['kid-c', 'kid-b', 'kid-a'],
    states: { 'kid-a': ['retiring', 10_300, 10_300 + RETENTION, 'retired'], 'kid-b': ['retiring', 10_400, 10_400 + RETENTION, 'retired'], 'kid-c': ['active', 10_400] } },
  { name: 'first deployment with two keys: the oldest signs early, the newer waits',
    keys: [key('kid-a', 0), key('kid-b', 100)], now: s(50), active: 'kid-a', activeEarly: true, published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['active', 0, 300, 'active'], 'kid-b': ['pending', 100, 400, 'active'] } },
  { name: 'first deployment with two keys: after its window the oldest signs regularly until the newer takes over',
    keys: [key('kid-a', 0), key('kid-b', 100)], now: s(300), active: 'kid-a', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['active', 300, 400, 'retiring'], 'kid-b': ['pending', 100, 400, 'active'] } },
  { name: 'equal creation times: the larger kid signs early, the smaller kid wins at the window',
    keys: [key('kid-a', 0), key('kid-b', 0)], now: s(0), active: 'kid-b', activeEarly: true, published: ['kid-a', 'kid-b'],
    states: { 'kid-a': ['pending', 0, 300, 'active'], 'kid-b': ['active', 0, 300, 'retiring'] } },
  { name: 'equal creation times after the window: the smaller kid signs, the other retires',
    keys: [key('kid-a', 0), key('kid-b', 0)], now: s(300), active: 'kid-a', published: ['kid-a', 'kid-b'],
    states: { 'kid-a': ['active', 300], 'kid-b': ['retiring', 300, 300 + RETENTION, 'retired'] } },
  { name: 'the same key in two files counts once, from its earliest creation',
    keys: [key('kid-a', 200), key('kid-a', 0)], now: s(300), active: 'kid-a', published: ['kid-a'],
    states: { 'kid-a': ['active', 300] } },
  { name: 'prePublishSeconds 0: a new key signs the moment it appears (what Tyk cannot follow)',
    keys: [A, B], now: s(10_000), settings: { ...SETTINGS, prePublishSeconds: 0 }, active: 'kid-b', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['retiring', 10_000, 10_000 + RETENTION, 'retired'], 'kid-b': ['active', 10_000] } },
  { name: 'the retention follows maxTokenTtl and the margin',
    keys: [A, B], now: s(10_300 + 600 + 5) - 1, settings: { ...SETTINGS, maxTokenTtlSeconds: 600, retireMarginSeconds: 5 }, active: 'kid-b', published: ['kid-b', 'kid-a'],
    states: { 'kid-a': ['retiring', 10_300, 10_905, 'retired'], 'kid-b': ['active', 10_300] } },
];

function statesAsSeconds(states: ReadonlyMap<string, { state: KeyState; since: number; nextTransitionAt?: number; nextState?: KeyState }>): Record<string, Expected> {
  const out: Record<string, Expected> = {};
  for (const [kid, info] of states) {
    const since = (info.since - T) / 1000;
    out[kid] =
      info.nextTransitionAt === undefined || info.nextState === undefined
        ? [info.state, since]
        : [info.state, since, (info.nextTransitionAt - T) / 1000, info.nextState];
  }
  return out;
}

describe('computeKeyStates', () => {
  for (const c of cases) {
    it(c.name, () => {
      const result = computeKeyStates(c.keys, c.now, c.settings ?? SETTINGS);
      assert.equal(result.active?.kid, c.active);
      assert.equal(result.activeEarly, c.activeEarly ?? false);
      assert.deepEqual(
        result.published.map((k) => k.kid),
        c.published,
      );
      assert.deepEqual(statesAsSeconds(result.states), c.states);
      // The global next transition is the earliest of the keys' own.
      const nexts = [...result.states.values()].flatMap((info) => (info.nextTransitionAt === undefined ? [] : [info.nextTransitionAt]));
      assert.equal(result.nextTransitionAt, nexts.length === 0 ? undefined : Math.min(...nexts));
    });
  }

  it('never leaves a moment without a signer, and never has two, while keys exist', () => {
    const keys = [key('k1', 0), key('k2', 1_000), key('k3', 1_000), key('k4', 1_200), key('k5', 9_000)];
    let previousActive: string | undefined;
    let changes = 0;
    for (let t = -100; t <= 20_000; t += 10) {
      const result = computeKeyStates(keys, s(t), SETTINGS);
      const active = [...result.states].filter(([, info]) => info.state === 'active').map(([kid]) => kid);
      assert.deepEqual(active, [result.active?.kid], `exactly one active key at t=${t}`);
      assert.ok(result.published.some((k) => k.kid === result.active?.kid), `the active key is published at t=${t}`);
      if (previousActive !== undefined && previousActive !== result.active?.kid) changes += 1;
      previousActive = result.active?.kid;
    }
    // k1 -> k2 (k2 and k3 tie and the smaller kid wins, so k3 never signs) -> k4 -> k5: three hand-overs.
    assert.equal(changes, 3);
    assert.equal(previousActive, 'k5');
  });

  it('is deterministic: input order does not matter', () => {
    const keys = [key('kid-x', 0), key('kid-y', 0), key('kid-z', 500), key('kid-w', 9_000)];
    const reference = computeKeyStates(keys, s(9_100), SETTINGS);
    const orders = [
      [3, 2, 1, 0],
      [1, 0, 3, 2],
      [2, 3, 0, 1],
    ];
    for (const order of orders) {
      const shuffled = order.map((i) => keys[i]).filter((k): k is KeyTimestamps => k !== undefined);
      const result = computeKeyStates(shuffled, s(9_100), SETTINGS);
      assert.equal(result.active?.kid, reference.active?.kid);
      assert.deepEqual(
        result.published.map((k) => k.kid),
        reference.published.map((k) => k.kid),
      );
      assert.deepEqual(statesAsSeconds(result.states), statesAsSeconds(reference.states));
    }
  });

  it('returns the caller\'s key objects, so extra fields (the private key) come along', () => {
    const signing = { ...key('kid-a', 0), privateKey: 'opaque' };
    const result = computeKeyStates([signing], s(400), SETTINGS);
    assert.equal(result.active, signing);
    assert.equal(result.published[0], signing);
  });
});

describe('signing lifecycle configuration', () => {
  const input = (signing: Record<string, unknown>) => ({
    server: { publicUrl: 'https://broker.example' },
    issuers: [{ name: 'cluster', issuer: 'https://issuer.example', audiences: ['broker'] }],
    rules: [{ name: 'everyone', policies: ['read'] }],
    signing: { keysDir: '/keys', ...signing },
  });

  it('defaults: 300 s pre-publication, Tyk cache 240 s, 60 s margin; no warning', () => {
    const result = validateConfig(input({}));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.config.signing.prePublishSeconds, 300);
    assert.equal(result.config.signing.tykJwksCacheSeconds, 240);
    assert.equal(result.config.signing.retireMarginSeconds, 60);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(keyLifecycleSettings(result.config.signing, result.config.tokens), { prePublishSeconds: 300, maxTokenTtlSeconds: 3600, retireMarginSeconds: 60 });
  });

  it('warns, without refusing, when prePublishSeconds is not longer than the Tyk cache', () => {
    for (const [signing, warns] of [
      [{ prePublishSeconds: 240 }, true],
      [{ prePublishSeconds: 0 }, true],
      [{ prePublishSeconds: 241 }, false],
      [{ prePublishSeconds: 300, tykJwksCacheSeconds: 300 }, true],
      [{ prePublishSeconds: 90, tykJwksCacheSeconds: 60 }, false],
    ] as const) {
      const result = validateConfig(input(signing));
      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(result.warnings.length, warns ? 1 : 0, JSON.stringify(signing));
      assert.deepEqual(result.warnings, configWarnings(result.config));
      if (warns) assert.match(result.warnings[0] ?? '', /^signing\.prePublishSeconds: .*not longer than Tyk's JWKS cache/);
    }
  });

  it('refuses negative or fractional durations, naming the field', () => {
    const result = validateConfig(input({ prePublishSeconds: -1, retireMarginSeconds: 1.5 }));
    assert.equal(result.ok, false);
    assert.deepEqual(
      result.ok ? [] : result.problems.map((p) => p.path),
      ['signing.prePublishSeconds', 'signing.retireMarginSeconds'],
    );
  });
});
