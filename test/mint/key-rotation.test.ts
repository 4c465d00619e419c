/**
 * Key rotation as Tyk sees it. Tyk fetches the broker's JWKS, keeps that snapshot for its cache lifetime (240 s by
 * default) and never refetches on an unknown kid. So for every token the broker mints, and every snapshot Tyk could
 * be holding while that token is alive, the token must verify against the snapshot's keys.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import supertest from 'supertest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import { openSigningKeyDirectory, type SigningKeyDirectory } from '../../src/server/mint/signing-key-directory.js';
import { jwksDocument, keyMetadataDocument } from '../../src/server/mint/signing-key-set.js';
import { signAccessToken } from '../../src/server/mint/sign-access-token.js';
import { createBroker } from '../../src/server/broker.js';
import { createTestClock } from '../support/clock.js';
import { captureLogs } from '../support/log-capture.js';
import { startHarness, type Harness } from '../support/broker-harness.js';
import type { KeyLifecycleSettings } from '../../src/server/mint/key-lifecycle.js';
import { useScratchDir } from '../support/scratch-dir.js';

const T0 = Date.UTC(2025, 0, 1);
const TYK_CACHE_SECONDS = 240;
const MAX_TTL_SECONDS = 600;
const MARGIN_SECONDS = 60;
/** Simulation step. Every lifecycle boundary below falls on a step, so the JWKS never changes between two steps. */
const STEP_SECONDS = 10;
/** Second key added at R1, third at R2, while the first is still retiring. */
const R1 = 600;
const R2 = 1100;
const END = 2400;

function ecPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function addKey(dir: string, name: string, notBefore: number): Promise<string> {
  const pem = ecPem();
  const kid = await calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }) as JWK, 'sha256');
  await writeFile(join(dir, `${name}.json`), keyMetadataDocument(kid, notBefore));
  await writeFile(join(dir, `${name}.pem`), pem);
  return kid;
}

interface Snapshot {
  /** Seconds after T0 at which "Tyk" fetched it. */
  readonly at: number;
  readonly jwks: JSONWebKeySet;
  readonly kids: readonly string[];
}

interface Minted {
  readonly at: number;
  readonly exp: number;
  readonly kid: string;
  readonly token: string;
}

interface Simulation {
  readonly kids: { readonly a: string; readonly b: string; readonly c: string };
  readonly snapshots: readonly Snapshot[];
  readonly tokens: readonly Minted[];
}

/** Runs the broker's key directory through two rotations on an injected clock: a JWKS fetch and a mint every step. */
async function simulate(root: string, prePublishSeconds: number): Promise<Simulation> {
  const dir = await mkdtemp(join(root, `pre-${prePublishSeconds}-`));
  const clock = createTestClock(T0);
  const lifecycle: KeyLifecycleSettings = { prePublishSeconds, maxTokenTtlSeconds: MAX_TTL_SECONDS, retireMarginSeconds: MARGIN_SECONDS };
  const a = await addKey(dir, 'a', T0 - 86_400_000);
  let keys: SigningKeyDirectory | undefined;
  let b = '';
  let c = '';
  const snapshots: Snapshot[] = [];
  const tokens: Minted[] = [];
  try {
    keys = await openSigningKeyDirectory({ dir, algorithm: 'ES256', lifecycle, now: clock.now, logger: captureLogs().logger, rescanIntervalMs: 0, watch: false });
    for (let t = 0; t <= END; t += STEP_SECONDS) {
      clock.set(T0 + t * 1000);
      if (t === R1) b = await addKey(dir, 'b', clock.now());
      if (t === R2) c = await addKey(dir, 'c', clock.now());
      assert.equal(await keys.rescan(), true);
      const jwks = jwksDocument(keys);
      snapshots.push({ at: t, jwks, kids: jwks.keys.map((k) => k.kid ?? '') });
      const key = keys.active();
      assert.ok(key !== undefined, `a key signs at t=${t}`);
      const iat = Math.floor(clock.now() / 1000);
      const token = await signAccessToken({ sub: 'system:serviceaccount:payments:argo', iat, exp: iat + MAX_TTL_SECONDS }, key);
      tokens.push({ at: t, exp: t + MAX_TTL_SECONDS, kid: key.kid, token });
    }
  } finally {
    await keys?.close();
  }
  return { kids: { a, b, c }, snapshots, tokens };
}

interface Check {
  readonly token: Minted;
  readonly snapshot: Snapshot;
  readonly error: string | undefined;
}

/**
 * Verifies every (token, snapshot) pair in which Tyk could hold the snapshot while the token is alive. Conservative by
 * one step on both sides: a snapshot fetched between two steps, or a token minted between two, has the same content
 * as the step before, and lives up to one step longer.
 *
 * Each pair is verified at a moment both are live, so only the snapshot's keys can decide the outcome; consecutive
 * snapshots mostly hold the same keys, so a token's result is computed once per distinct key set (the test would
 * otherwise spend its time re-checking identical ECDSA signatures).
 */
async function checkAll(simulation: Simulation): Promise<Check[]> {
  const checks: Check[] = [];
  const keySets = new Map<string, ReturnType<typeof createLocalJWKSet>>();
  for (const snapshot of simulation.snapshots) {
    const content = JSON.stringify(snapshot.jwks);
    if (!keySets.has(content)) keySets.set(content, createLocalJWKSet(snapshot.jwks));
  }
  for (const token of simulation.tokens) {
    const results = new Map<string, string | undefined>();
    for (const snapshot of simulation.snapshots) {
      const heldUntil = snapshot.at + TYK_CACHE_SECONDS + STEP_SECONDS;
      const aliveUntil = token.exp + STEP_SECONDS;
      if (snapshot.at >= aliveUntil || heldUntil <= token.at) continue;
      const content = JSON.stringify(snapshot.jwks);
      if (!results.has(content)) {
        // A moment at which the token is alive and Tyk holds the snapshot.
        const at = Math.min(Math.max(token.at, snapshot.at), token.exp - 1);
        const keySet = keySets.get(content);
        assert.ok(keySet !== undefined);
        let error: string | undefined;
        try {
          await jwtVerify(token.token, keySet, { currentDate: new Date(T0 + at * 1000), algorithms: ['ES256'] });
        } catch (e) {
          error = (e as { code?: string }).code ?? String(e);
        }
        results.set(content, error);
      }
      checks.push({ token, snapshot, error: results.get(content) });
    }
  }
  return checks;
}

/** [kid, first second, last second] of each run of consecutive steps with the same value. */
function runs<T>(items: readonly T[], at: (item: T) => number, value: (item: T) => string): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const item of items) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0] === value(item)) last[2] = at(item);
    else out.push([value(item), at(item), at(item)]);
  }
  return out;
}

describe('key rotation against a caching Tyk', () => {
  const scratch = useScratchDir('key-rotation-');

  it('with prePublishSeconds 300 every token verifies against every JWKS snapshot Tyk could hold while it is alive', async () => {
    const simulation = await simulate(scratch.path, 300);
    const { a, b, c } = simulation.kids;

    // Who signed when: A until B's window ends (R1 + 300), B until C's (R2 + 300), then C.
    assert.deepEqual(
      runs(simulation.tokens, (t) => t.at, (t) => t.kid),
      [
        [a, 0, R1 + 300 - STEP_SECONDS],
        [b, R1 + 300, R2 + 300 - STEP_SECONDS],
        [c, R2 + 300, END],
      ],
    );
    // What the JWKS held when: a key from its file's appearance until superseded + maxTtl + margin.
    const published = (kid: string) => simulation.snapshots.filter((s) => s.kids.includes(kid)).map((s) => s.at);
    const span = (kid: string) => {
      const times = published(kid);
      return [times[0], times[times.length - 1], times.length];
    };
    const retention = MAX_TTL_SECONDS + MARGIN_SECONDS;
    assert.deepEqual(span(a), [0, R1 + 300 + retention - STEP_SECONDS, (R1 + 300 + retention) / STEP_SECONDS]);
    assert.deepEqual(span(b), [R1, R2 + 300 + retention - STEP_SECONDS, (R2 + 300 + retention - R1) / STEP_SECONDS]);
    assert.deepEqual(span(c), [R2, END, (END - R2) / STEP_SECONDS + 1]);

    const checks = await checkAll(simulation);
    const failures = checks.filter((check) => check.error !== undefined).map((f) => `token t=${f.token.at} (${f.token.kid}) x snapshot t=${f.snapshot.at}: ${f.error}`);
    assert.deepEqual(failures, []);
    // The check covered the interesting pairs: tokens of each key against snapshots from before their key signed.
    for (const kid of [b, c]) {
      assert.ok(
        checks.some((check) => check.token.kid === kid && check.snapshot.at < check.token.at - TYK_CACHE_SECONDS + STEP_SECONDS),
        `tokens of ${kid} were checked against the oldest snapshot Tyk could still hold`,
      );
    }
    assert.ok(checks.some((check) => check.token.kid === a && check.snapshot.at >= R1 + 300 + MAX_TTL_SECONDS - STEP_SECONDS), 'old-key tokens checked near their expiry');
    assert.ok(checks.length > 5000, `${checks.length} pairs checked`);
  });

  it('with prePublishSeconds 0 the same check fails: Tyk refuses a new key\'s tokens with the JWKS it cached before', async () => {
    const simulation = await simulate(scratch.path, 0);
    const { a, b, c } = simulation.kids;
    assert.deepEqual(
      runs(simulation.tokens, (t) => t.at, (t) => t.kid),
      [
        [a, 0, R1 - STEP_SECONDS],
        [b, R1, R2 - STEP_SECONDS],
        [c, R2, END],
      ],
    );
    const checks = await checkAll(simulation);
    const failures = checks.filter((check) => check.error !== undefined);
    assert.ok(failures.length > 0, 'signing at once must fail against a cached JWKS');
    // Exactly the pairs of a new key's token and a snapshot fetched before the key was published fail, with the
    // error Tyk's "Key not authorized" corresponds to.
    const addedAt = new Map([
      [a, -Infinity],
      [b, R1],
      [c, R2],
    ]);
    for (const check of checks) {
      const expectedToFail = check.snapshot.at < (addedAt.get(check.token.kid) ?? -Infinity);
      assert.equal(check.error, expectedToFail ? 'ERR_JWKS_NO_MATCHING_KEY' : undefined, `token t=${check.token.at} x snapshot t=${check.snapshot.at}`);
    }
    const first = failures.find((f) => f.token.at === R1 && f.snapshot.at === R1 - STEP_SECONDS);
    assert.ok(first !== undefined, 'the first token of the new key fails against the snapshot fetched just before it appeared');
    assert.deepEqual(new Set(failures.map((f) => f.token.kid)), new Set([b, c]));
  });
});

describe('key rotation through the broker: JWKS, minted tokens and signing_key_info follow the directory', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'key-rotation-broker-'));
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('rotates without a restart', async () => {
    const start = h.clock.now();
    const a = await addKey(dir, 'a', start - 86_400_000);
    const keys = await openSigningKeyDirectory({
      dir,
      algorithm: 'ES256',
      lifecycle: { prePublishSeconds: 300, maxTokenTtlSeconds: h.config.tokens.maxTtlSeconds, retireMarginSeconds: 60 },
      now: h.clock.now,
      logger: captureLogs().logger,
      rescanIntervalMs: 0,
      watch: false,
    });
    const broker = createBroker(h.config, { logger: captureLogs().logger, signingKeys: keys, now: h.clock.now });
    try {
      const http = supertest(broker.app);
      const jwksKids = async () => ((await http.get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet).keys.map((k) => k.kid);
      const mintedKid = async () => {
        const res = await http
          .post('/token')
          .type('form')
          .send({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
            subject_token: await h.issuer.projectedToken(),
          })
          .expect(200);
        return decodeProtectedHeader((res.body as { access_token: string }).access_token).kid;
      };
      const keyStates = async () => {
        const text = (await http.get('/metrics').expect(200)).text;
        return [...text.matchAll(/^token_broker_signing_key_info\{kid="([^"]+)",alg="ES256",state="(\w+)"\} 1$/gm)].map((m) => [m[1], m[2]]).sort();
      };

      assert.deepEqual(await jwksKids(), [a]);
      assert.equal(await mintedKid(), a);
      assert.deepEqual(await keyStates(), [[a, 'active']]);

      const b = await addKey(dir, 'b', h.clock.now());
      assert.equal(await keys.rescan(), true);
      assert.deepEqual(await jwksKids(), [b, a], 'the new key is published at once');
      assert.equal(await mintedKid(), a, 'but does not sign yet');
      assert.deepEqual(await keyStates(), [[a, 'active'], [b, 'pending']].sort());

      h.clock.advance(300);
      assert.equal(await mintedKid(), b, 'after prePublishSeconds the new key signs, with no file touched');
      assert.deepEqual(await jwksKids(), [b, a]);
      assert.deepEqual(await keyStates(), [[a, 'retiring'], [b, 'active']].sort());

      h.clock.advance(h.config.tokens.maxTtlSeconds + 60);
      assert.deepEqual(await jwksKids(), [b], 'the old key leaves once every token it signed has expired');
      assert.deepEqual(await keyStates(), [[b, 'active']]);
    } finally {
      await broker.close();
      await keys.close();
    }
  });
});
