import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, type ReasonCode } from '../../src/server/errors.js';
import { checkTemporalClaims, formatDuration, type TokenTiming } from '../../src/server/issuers/temporal-claims.js';
import type { Claims } from '../../src/server/identity/workload-identity.js';

// A fixed instant: the tests never read the wall clock.
const NOW = 1_767_225_600;
const SKEW = 30;

describe('formatDuration', () => {
  const cases: ReadonlyArray<readonly [number, string]> = [
    [0, '0s'],
    [-5, '0s'],
    [1, '1s'],
    [45, '45s'],
    [59.4, '59s'],
    [59.6, '1m'],
    [60, '1m'],
    [252, '4m 12s'],
    [3599, '59m 59s'],
    [3600, '1h'],
    [11_100, '3h 5m'],
    [11_159, '3h 5m'],
    [47 * 3600 + 59 * 60, '47h 59m'],
    [48 * 3600, '2d 0h'],
    [365 * 86_400 + 5 * 3600, '365d 5h'],
  ];
  for (const [seconds, expected] of cases) {
    it(`${seconds} seconds read as "${expected}"`, () => {
      assert.equal(formatDuration(seconds), expected);
    });
  }
});

interface Accepted {
  readonly name: string;
  readonly claims: Claims;
  readonly skew?: number;
  readonly timing: TokenTiming;
}

interface Rejected {
  readonly name: string;
  readonly claims: Claims;
  readonly skew?: number;
  readonly reason: ReasonCode;
  /** Phrases the client-facing description must contain. */
  readonly phrases: readonly string[];
  /** Phrases it must not contain (the other branch of an explanation). */
  readonly absent?: readonly string[];
  readonly facts?: Readonly<Record<string, string | number | boolean>>;
}

describe('checkTemporalClaims: accepted tokens', () => {
  const cases: readonly Accepted[] = [
    {
      name: 'a fresh projected token (iat = nbf = now, one hour of life)',
      claims: { iat: NOW, nbf: NOW, exp: NOW + 3600 },
      timing: { expiresAt: NOW + 3600, issuedAt: NOW, remainingSeconds: 3600, skewSeconds: 0 },
    },
    {
      name: 'only exp (iat and nbf are optional)',
      claims: { exp: NOW + 60 },
      timing: { expiresAt: NOW + 60, issuedAt: undefined, remainingSeconds: 60, skewSeconds: 0 },
    },
    {
      name: 'expired 29s ago, within 30s of skew',
      claims: { iat: NOW - 629, exp: NOW - 29 },
      timing: { expiresAt: NOW - 29, issuedAt: NOW - 629, remainingSeconds: -29, skewSeconds: 0 },
    },
    {
      name: 'nbf exactly at the skew limit',
      claims: { iat: NOW, nbf: NOW + SKEW, exp: NOW + 600 },
      timing: { expiresAt: NOW + 600, issuedAt: NOW, remainingSeconds: 600, skewSeconds: SKEW },
    },
    {
      name: 'iat ahead within skew, nbf absent: the skew is reported for the metric',
      claims: { iat: NOW + 12, exp: NOW + 612 },
      timing: { expiresAt: NOW + 612, issuedAt: NOW + 12, remainingSeconds: 612, skewSeconds: 12 },
    },
    {
      name: 'iat in the past: no negative skew',
      claims: { iat: NOW - 100, nbf: NOW - 100, exp: NOW + 500 },
      timing: { expiresAt: NOW + 500, issuedAt: NOW - 100, remainingSeconds: 500, skewSeconds: 0 },
    },
    {
      name: 'skew 0: one second before exp',
      claims: { exp: NOW + 1 },
      skew: 0,
      timing: { expiresAt: NOW + 1, issuedAt: undefined, remainingSeconds: 1, skewSeconds: 0 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(checkTemporalClaims(c.claims, NOW, c.skew ?? SKEW), c.timing);
    });
  }
});

describe('checkTemporalClaims: rejected tokens', () => {
  const cases: readonly Rejected[] = [
    {
      name: 'no exp',
      claims: { iat: NOW, nbf: NOW },
      reason: 'missing_claim',
      phrases: ['no "exp" claim'],
      facts: { claim: 'exp' },
    },
    {
      name: 'exp as a string of digits',
      claims: { iat: NOW, exp: '9999999999' },
      reason: 'malformed_token',
      phrases: ['"exp"', 'NumericDate'],
    },
    {
      name: 'exp null',
      claims: { exp: null },
      reason: 'malformed_token',
      phrases: ['"exp"', 'NumericDate'],
    },
    {
      name: 'nbf as a string',
      claims: { nbf: String(NOW), exp: NOW + 600 },
      reason: 'malformed_token',
      phrases: ['"nbf"', 'NumericDate'],
    },
    {
      name: 'iat as a boolean',
      claims: { iat: true, exp: NOW + 600 },
      reason: 'malformed_token',
      phrases: ['"iat"', 'NumericDate'],
    },
    {
      name: 'expired exactly at the skew limit (now - skew = exp)',
      claims: { iat: NOW - 630, exp: NOW - SKEW },
      reason: 'expired',
      phrases: ['expired 30s ago', 'Its lifetime was 10m', 'clock'],
      absent: ['re-read'],
      facts: { expiredForSeconds: 30, lifetimeSeconds: 600 },
    },
    {
      name: 'expired five minutes ago: clocks or a rotation race',
      claims: { iat: NOW - 900, exp: NOW - 300 },
      reason: 'expired',
      phrases: ['expired 5m ago', 'clock', 'kubelet rotated it'],
      absent: ['re-read'],
      facts: { expiredForSeconds: 300, lifetimeSeconds: 600 },
    },
    {
      name: 'expired ten minutes ago: a step kept the token',
      claims: { iat: NOW - 4200, nbf: NOW - 4200, exp: NOW - 600 },
      reason: 'expired',
      phrases: ['expired 10m ago', 'Its lifetime was 1h', 're-read the file for every call'],
      facts: { expiredForSeconds: 600, lifetimeSeconds: 3600 },
    },
    {
      name: 'expired two days ago, no iat: no lifetime sentence',
      claims: { exp: NOW - 2 * 86_400 },
      reason: 'expired',
      phrases: ['expired 2d 0h ago', 're-read the file'],
      absent: ['Its lifetime was'],
      facts: { expiredForSeconds: 2 * 86_400 },
    },
    {
      name: 'skew 0: expires at now',
      claims: { exp: NOW },
      skew: 0,
      reason: 'expired',
      phrases: ['expired 0s ago'],
      facts: { expiredForSeconds: 0 },
    },
    {
      name: 'expired and nbf in the future: expiry is reported first',
      claims: { nbf: NOW + 3600, exp: NOW - 3600 },
      reason: 'expired',
      phrases: ['expired 1h ago'],
    },
    {
      name: 'nbf one second beyond the skew',
      claims: { iat: NOW, nbf: NOW + SKEW + 1, exp: NOW + 600 },
      reason: 'not_yet_valid',
      phrases: ['not valid for another 31s', '"nbf"', 'allowed clock skew 30s', 'NTP'],
      facts: { skewSeconds: 31 },
    },
    {
      name: 'nbf and iat both ahead: nbf is reported',
      claims: { iat: NOW + 120, nbf: NOW + 120, exp: NOW + 720 },
      reason: 'not_yet_valid',
      phrases: ['not valid for another 2m'],
      facts: { skewSeconds: 120 },
    },
    {
      name: 'iat ahead beyond the skew, nbf absent',
      claims: { iat: NOW + 300, exp: NOW + 900 },
      reason: 'issued_in_future',
      phrases: ['issued 5m in the future', '"iat"', 'allowed clock skew 30s', 'NTP'],
      facts: { skewSeconds: 300 },
    },
    {
      name: 'skew 0: iat one second ahead',
      claims: { iat: NOW + 1, exp: NOW + 600 },
      skew: 0,
      reason: 'issued_in_future',
      phrases: ['issued 1s in the future', 'allowed clock skew 0s'],
      facts: { skewSeconds: 1 },
    },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.reason}`, () => {
      let thrown: unknown;
      try {
        checkTemporalClaims(c.claims, NOW, c.skew ?? SKEW);
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof BrokerError, 'a BrokerError is thrown');
      assert.equal(thrown.code, c.reason);
      assert.equal(thrown.status, 400);
      assert.equal(thrown.oauthError, 'invalid_request');
      for (const phrase of c.phrases) assert.ok(thrown.description.includes(phrase), `"${thrown.description}" mentions "${phrase}"`);
      for (const phrase of c.absent ?? []) assert.ok(!thrown.description.includes(phrase), `"${thrown.description}" does not mention "${phrase}"`);
      if (c.facts !== undefined) assert.deepEqual(thrown.facts, c.facts);
    });
  }
});
