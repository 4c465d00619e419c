import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants, sign as cryptoSign } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startHarness, SUBJECT_AUDIENCE, type Harness } from '../support/broker-harness.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { projectedClaimsFor, startRawIssuer, type RawIssuer } from './raw-issuer.js';
import { expectMinted, expectRefusal } from './refusal.js';

/*
 * Forged and confusing subject tokens that test/issuers/subject-token-rejections.test.ts does not already
 * send (that suite covers alg none, HS256 with the RSA public key, ES256 on an RSA kid, jku/x5u/jwk/x5c, hostile
 * kids, crit/b64 on unsigned tokens, stripped and truncated signatures, JWE, non-base64url, trailing slashes,
 * audiences, times and legacy tokens). Each refusal here is exact (status, OAuth error, reason, description) and
 * leaves no audit record and no cache entry.
 *
 * Three issuers: A is the stand-in (RS256, remote JWKS); B (RS256) and C (ES256) sign raw bytes and publish their
 * keys through a JWKS file, so a test can sign JSON that no serializer writes (duplicate keys, 1e999).
 */

const ISSUER_B = 'https://cluster-b.example.test';
const ISSUER_C = 'https://cluster-c.example.test';

const DESCRIPTIONS = {
  unknownKid:
    'The subject token was signed with a key its issuer does not publish (unknown "kid"). If the cluster rotated its service-account keys, retry shortly.',
  badSignature: 'The subject token\'s signature does not verify with its issuer\'s key.',
  extensions: 'The subject token\'s header uses JWS extensions ("crit"/"b64") that are not accepted.',
  payloadNotJson: 'The subject token\'s payload is not base64url-encoded JSON.',
  notNumericDate: (claim: string) => `The subject token's "${claim}" claim is not a NumericDate (seconds since the epoch).`,
} as const;

const b64u = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

describe('security: forged and confusing subject tokens', { timeout: 60_000 }, () => {
  let h: Harness;
  let b: RawIssuer;
  let c: RawIssuer;

  const exchange = (token: string) => () => h.exchange(token);
  const claimsFor = (iss: string, o: Parameters<typeof projectedClaimsFor>[2] = {}) => projectedClaimsFor(iss, h.clock.now(), o);

  before(async () => {
    b = await startRawIssuer({ issuer: ISSUER_B, alg: 'RS256' });
    c = await startRawIssuer({ issuer: ISSUER_C, alg: 'ES256' });
    h = await startHarness({
      config: (issuerUrl) => ({
        issuers: [
          { name: 'test-cluster', issuer: issuerUrl, audiences: [SUBJECT_AUDIENCE], kind: 'kubernetes', clockSkewSeconds: 30 },
          { name: 'cluster-b', issuer: ISSUER_B, audiences: [SUBJECT_AUDIENCE], jwksFile: b.jwksFile },
          { name: 'cluster-c', issuer: ISSUER_C, audiences: [SUBJECT_AUDIENCE], jwksFile: c.jwksFile },
        ],
      }),
    });
    await h.broker.warmUp();
  });
  after(async () => {
    await h.close();
    await b.close();
    await c.close();
  });

  it('baseline: each issuer\'s own token is minted', async () => {
    await expectMinted(h, exchange(await h.issuer.projectedToken()));
    await expectMinted(h, exchange(b.sign(claimsFor(ISSUER_B, { podUid: 'baseline-b' }))));
    await expectMinted(h, exchange(c.sign(claimsFor(ISSUER_C, { podUid: 'baseline-c' }))));
  });

  describe('algorithm and key type', () => {
    it('PS256 validly signed with the RSA key whose JWK says alg RS256: unsupported_algorithm', async () => {
      const input = `${b64u(JSON.stringify({ alg: 'PS256', kid: b.kid }))}.${b64u(JSON.stringify(claimsFor(ISSUER_B)))}`;
      const signature = cryptoSign('sha256', Buffer.from(input), {
        key: b.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      }).toString('base64url');
      await expectRefusal(h, exchange(`${input}.${signature}`), {
        status: 400,
        error: 'invalid_request',
        reason: 'unsupported_algorithm',
        description: `The issuer's key "${b.kid}" cannot verify PS256 signatures.`,
      });
    });

    it('RS256 in the header while the kid names the issuer\'s EC key: unsupported_algorithm', async () => {
      const token = b.signRaw(JSON.stringify({ alg: 'RS256', kid: c.kid }), JSON.stringify(claimsFor(ISSUER_C)));
      await expectRefusal(h, exchange(token), {
        status: 400,
        error: 'invalid_request',
        reason: 'unsupported_algorithm',
        description: `The issuer's key "${c.kid}" cannot verify RS256 signatures.`,
      });
    });
  });

  describe('JWS extensions and nesting, validly signed', () => {
    it('crit naming an unknown extension: malformed_token', async () => {
      const ext = 'https://attacker.example/ext';
      const token = b.sign(claimsFor(ISSUER_B), { crit: [ext], [ext]: true });
      await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.extensions });
    });

    it('b64: false with crit, validly signed over the raw payload: malformed_token', async () => {
      const payload = JSON.stringify(claimsFor(ISSUER_B));
      // RFC 7797: the signing input carries the payload unencoded; the compact form detaches or keeps it raw.
      const header = b64u(JSON.stringify({ alg: 'RS256', kid: b.kid, b64: false, crit: ['b64'] }));
      const signature = cryptoSign('sha256', Buffer.from(`${header}.${payload}`), b.privateKey).toString('base64url');
      await expectRefusal(h, exchange(`${header}.${b64u(payload)}.${signature}`), {
        status: 400,
        error: 'invalid_request',
        reason: 'malformed_token',
        description: DESCRIPTIONS.extensions,
      });
    });

    it('a nested JWT (cty: JWT) whose inner token is a valid projected token: malformed_token', async () => {
      const inner = await h.issuer.projectedToken();
      const token = b.signRaw(JSON.stringify({ alg: 'RS256', kid: b.kid, cty: 'JWT' }), inner);
      await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.payloadNotJson });
    });
  });

  describe('issuer confusion', () => {
    it('signed by issuer A (its kid) with the iss of issuer B: unknown_kid, B does not know A\'s key', async () => {
      const token = await h.issuer.sign(claimsFor(ISSUER_B));
      await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'unknown_kid', description: DESCRIPTIONS.unknownKid });
    });

    it('signed by issuer B\'s key under A\'s kid with the iss of A (a signature from another issuer\'s key): bad_signature', async () => {
      const token = b.signRaw(JSON.stringify({ alg: 'RS256', kid: h.issuer.kid }), JSON.stringify(claimsFor(h.issuer.issuer)));
      await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'bad_signature', description: DESCRIPTIONS.badSignature });
    });

    it('signed by issuer B\'s key under B\'s kid with the iss of A: unknown_kid', async () => {
      const token = b.sign(claimsFor(h.issuer.issuer));
      await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'unknown_kid', description: DESCRIPTIONS.unknownKid });
    });

    it('signed by issuer B\'s key without a kid, with the iss of A: bad_signature (A\'s RSA key is tried, and fails)', async () => {
      const token = b.signRaw(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claimsFor(h.issuer.issuer)));
      await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'bad_signature', description: DESCRIPTIONS.badSignature });
    });
  });

  describe('duplicate JSON keys: the signed bytes are parsed once, and the last value wins (as in Go\'s encoding/json)', () => {
    /** The claims as JSON text with `extra` members appended after them (JSON.stringify cannot repeat a key). */
    function withDuplicates(claims: Record<string, unknown>, extra: Record<string, unknown>): string {
      const members = Object.entries(extra).map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
      return `${JSON.stringify(claims).slice(0, -1)},${members.join(',')}}`;
    }

    it('kubernetes.io and sub twice: the token is for the last namespace', async () => {
      const claims = claimsFor(ISSUER_B, { namespace: 'kube-system', serviceAccount: 'admin', podUid: 'dup-ns' });
      const last = claimsFor(ISSUER_B, { namespace: 'payments', serviceAccount: 'argo-runner', podUid: 'dup-ns' });
      const text = withDuplicates(claims, { 'kubernetes.io': last['kubernetes.io'], sub: last.sub });
      assert.equal((text.match(/"kubernetes\.io"/g) ?? []).length, 2);
      const res = await expectMinted(h, exchange(b.signRaw(JSON.stringify({ alg: 'RS256', kid: b.kid }), text)));
      const minted = decodeJwt(String(res.body.access_token));
      assert.equal(minted.sub, 'system:serviceaccount:payments:argo-runner');
      assert.deepEqual(minted.workload, { issuer: 'cluster-b', namespace: 'payments', serviceAccount: 'argo-runner', pod: 'orders-sync-x7k2p-call-api-3149217812' });
    });

    it('aud twice, the broker\'s audience first: the last (another audience) wins, audience_mismatch', async () => {
      const text = withDuplicates(claimsFor(ISSUER_B, { audience: [SUBJECT_AUDIENCE] }), { aud: ['vault'] });
      await expectRefusal(h, exchange(b.signRaw(JSON.stringify({ alg: 'RS256', kid: b.kid }), text)), {
        status: 400,
        error: 'invalid_request',
        reason: 'audience_mismatch',
        description: `The subject token's audience "vault" is not one this broker accepts for issuer "cluster-b"; request a projected token with audience "${SUBJECT_AUDIENCE}".`,
      });
    });

    it('iss twice: the issuer chosen before verification is the one whose claims are verified (the last)', async () => {
      const header = JSON.stringify({ alg: 'RS256', kid: b.kid });
      // iss A then B, signed by B: B's key verifies, and the claims read afterwards say B.
      await expectMinted(h, exchange(b.signRaw(header, withDuplicates(claimsFor(h.issuer.issuer, { podUid: 'dup-iss' }), { iss: ISSUER_B }))));
      // iss B then A, signed by B: A is asked for B's kid, and the token is refused.
      await expectRefusal(h, exchange(b.signRaw(header, withDuplicates(claimsFor(ISSUER_B), { iss: h.issuer.issuer }))), {
        status: 400,
        error: 'invalid_request',
        reason: 'unknown_kid',
        description: DESCRIPTIONS.unknownKid,
      });
    });

    it('alg twice in the header: the broker and the JWS library read the same (last) value', async () => {
      const payload = JSON.stringify(claimsFor(ISSUER_B, { podUid: 'dup-alg' }));
      await expectMinted(h, exchange(b.signRaw(`{"alg":"none","kid":"${b.kid}","alg":"RS256"}`, payload)));
      await expectRefusal(h, exchange(b.signRaw(`{"alg":"RS256","kid":"${b.kid}","alg":"none"}`, payload)), {
        status: 400,
        error: 'invalid_request',
        reason: 'unsupported_algorithm',
        description: 'The subject token\'s algorithm "none" is not accepted; accepted: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512.',
      });
    });
  });

  describe('numeric claims', () => {
    for (const claim of ['nbf', 'iat'] as const) {
      it(`"${claim}" as a string of digits, validly signed: malformed_token`, async () => {
        const claims = claimsFor(ISSUER_B);
        const token = b.sign({ ...claims, [claim]: String(claims[claim]) });
        await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.notNumericDate(claim) });
      });
    }

    const notNumbers: ReadonlyArray<readonly [string, unknown]> = [
      ['true', true],
      ['null', null],
      ['an array', [9_999_999_999]],
      ['an object', { $gt: 0 }],
      ['an empty string', ''],
    ];
    for (const [what, value] of notNumbers) {
      it(`"exp" as ${what}: malformed_token`, async () => {
        const token = b.sign({ ...claimsFor(ISSUER_B), exp: value });
        await expectRefusal(h, exchange(token), { status: 400, error: 'invalid_request', reason: 'malformed_token', description: DESCRIPTIONS.notNumericDate('exp') });
      });
    }

    it('"exp": 1e999 (Infinity once parsed): malformed_token', async () => {
      const text = JSON.stringify(claimsFor(ISSUER_B)).replace(/"exp":\d+/, '"exp":1e999');
      await expectRefusal(h, exchange(b.signRaw(JSON.stringify({ alg: 'RS256', kid: b.kid }), text)), {
        status: 400,
        error: 'invalid_request',
        reason: 'malformed_token',
        description: DESCRIPTIONS.notNumericDate('exp'),
      });
    });

    for (const exp of [-1, 0, -1e300]) {
      it(`"exp": ${exp}: expired`, async () => {
        const token = b.sign({ ...claimsFor(ISSUER_B), exp, iat: undefined, nbf: undefined });
        await expectRefusal(h, exchange(token), {
          status: 400,
          error: 'invalid_request',
          reason: 'expired',
          description: /^The subject token expired \S+d \d+h ago\. This usually means the step read the projected token file once/,
        });
      });
    }

    it('"exp": 1e300 from a trusted issuer is accepted, and the minted token still lives only the rule\'s TTL', async () => {
      const claims = { ...h.issuer.projectedClaims({ podUid: 'huge-exp' }), exp: 1e300 };
      const res = await expectMinted(h, exchange(await h.issuer.sign(claims)));
      assert.equal(res.body.expires_in, 300);
      const minted = decodeJwt(String(res.body.access_token));
      assert.equal(minted.exp, Math.floor(h.clock.now() / 1000) + 300);
    });

    it('"nbf" ten years ahead: not_yet_valid', async () => {
      const now = Math.floor(h.clock.now() / 1000);
      const token = b.sign({ ...claimsFor(ISSUER_B), nbf: now + 3650 * 86_400, exp: now + 3651 * 86_400 });
      await expectRefusal(h, exchange(token), {
        status: 400,
        error: 'invalid_request',
        reason: 'not_yet_valid',
        description:
          'The subject token is not valid for another 3650d 0h ("nbf" is in the future; allowed clock skew 30s). The clocks of the issuing cluster and the broker disagree: check NTP on the nodes.',
      });
    });
  });

  describe('the same refusals through Authorization: Bearer', () => {
    it('a forged token in the header is refused exactly like in the form', async () => {
      const token = b.signRaw(JSON.stringify({ alg: 'RS256', kid: h.issuer.kid }), JSON.stringify(claimsFor(h.issuer.issuer)));
      await expectRefusal(h, () => h.http.post('/token').set('Authorization', `Bearer ${token}`), {
        status: 400,
        error: 'invalid_request',
        reason: 'bad_signature',
        description: DESCRIPTIONS.badSignature,
      });
      // And the form with an explicit grant behaves the same.
      await expectRefusal(
        h,
        () =>
          h.http
            .post('/token')
            .type('form')
            .send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: token }),
        { status: 400, error: 'invalid_request', reason: 'bad_signature', description: DESCRIPTIONS.badSignature },
      );
    });
  });
});
