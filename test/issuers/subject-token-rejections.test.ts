import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { useHarness, startHarness, SUBJECT_AUDIENCE, type Harness } from '../support/broker-harness.js';
import { MAX_SUBJECT_TOKEN_BYTES, tokenSha256 } from '../../src/server/issuers/verify-subject-token.js';
import type { ReasonCode } from '../../src/server/errors.js';

const JWKS_PATH = '/openid/v1/jwks';

function b64u(value: string | Uint8Array | Record<string, unknown> | unknown[]): string {
  if (typeof value === 'string' || value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The three segments of a compact JWS. */
function segmentsOf(token: string): { header: string; payload: string; signature: string } {
  const [header = '', payload = '', signature = ''] = token.split('.');
  return { header, payload, signature };
}

/**
 * A token assembled by hand, for checks that must happen before any key is touched. The signature is
 * taken from a real token so that it has a realistic length (and so a leak of it would be detectable).
 */
function craft(header: Record<string, unknown>, payload: string, signature: string): string {
  return `${b64u(header)}.${payload}.${signature}`;
}

interface ExpectedRejection {
  readonly status?: number;
  readonly error?: string;
  readonly reason: ReasonCode;
  /** Key phrases of error_description. */
  readonly phrases?: readonly (string | RegExp)[];
  /** The exchange outcome logged: `rejected` for 4xx, `error` for 5xx. */
  readonly outcome?: 'rejected' | 'error';
}

/** Neither the token nor its signature (the secret-bearing part) may appear in a response or a log line. */
function assertNoLeak(text: string, token: string, where: string): void {
  assert.ok(!text.includes(token), `${where} does not contain the subject token`);
  const { signature } = segmentsOf(token);
  if (signature.length >= 16) assert.ok(!text.includes(signature), `${where} does not contain the subject token's signature`);
}

/**
 * Sends the token and checks everything a rejection must be: status, the exact OAuth error body, key phrases
 * of the description, no token minted (no audit line, outcome logged as rejected) and no token leaked.
 */
async function expectRejected(h: Harness, token: string, expected: ExpectedRejection) {
  const firstLine = h.logs.lines.length;
  const res = await h.exchange(token);
  assert.equal(res.status, expected.status ?? 400, res.text);
  assert.deepEqual(Object.keys(res.body).sort(), ['error', 'error_description', 'reason']);
  assert.equal(res.body.error, expected.error ?? 'invalid_request');
  assert.equal(res.body.reason, expected.reason);
  assert.equal(typeof res.body.error_description, 'string');
  for (const phrase of expected.phrases ?? []) {
    if (typeof phrase === 'string') assert.ok(res.body.error_description.includes(phrase), `"${res.body.error_description}" mentions "${phrase}"`);
    else assert.match(res.body.error_description, phrase);
  }
  assert.equal(res.headers['cache-control'], 'no-store');
  assertNoLeak(res.text, token, 'the response body');

  const lines = h.logs.lines.slice(firstLine);
  assert.equal(lines.filter((line) => line.audit === true).length, 0, 'no token was minted (no audit line)');
  const outcomes = lines.filter((line) => typeof line.outcome === 'string');
  assert.equal(outcomes.length, 1, 'exactly one exchange outcome is logged');
  const [outcome] = outcomes;
  assert.equal(outcome?.outcome, expected.outcome ?? 'rejected');
  assert.equal(outcome?.reason, expected.reason);
  assert.equal(outcome?.jti, undefined);
  if (Buffer.byteLength(token) <= MAX_SUBJECT_TOKEN_BYTES) assert.equal(outcome?.subjectTokenSha256, tokenSha256(token));
  for (const raw of h.logs.raw.slice(firstLine)) assertNoLeak(raw, token, 'a log line');
  return res;
}

/** Sends the token and checks that it was accepted and a token minted for it. */
async function expectAccepted(h: Harness, token: string) {
  const firstLine = h.logs.lines.length;
  const res = await h.exchange(token);
  assert.equal(res.status, 200, res.text);
  assert.equal(typeof res.body.access_token, 'string');
  const audits = h.logs.lines.slice(firstLine).filter((line) => line.audit === true);
  assert.equal(audits.length, 1, 'one audit line for the minted token');
  assert.equal(audits[0]?.subjectTokenSha256, tokenSha256(token));
  for (const raw of h.logs.raw.slice(firstLine)) assertNoLeak(raw, token, 'a log line');
  return res;
}

/** The issuer's published RSA key, as served on its JWKS endpoint. */
async function publishedJwk(h: Harness): Promise<JWK> {
  const response = await fetch(h.issuer.jwksUri);
  const { keys } = (await response.json()) as { keys: JWK[] };
  const jwk = keys.find((key) => key.kid === h.issuer.kid);
  assert.ok(jwk !== undefined);
  return jwk;
}

/** A key pair the issuer never published: what an attacker signs with. */
async function attackerKey(alg: 'RS256' | 'ES256'): Promise<{ privateKey: CryptoKey; publicJwk: JWK; kid: string; spkiDer: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  const pem = await exportSPKI(publicKey);
  const spkiDer = pem.replace(/-----[A-Z ]+-----|\s/g, '');
  return { privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' }, kid, spkiDer };
}

async function signWith(privateKey: CryptoKey, header: Record<string, unknown> & { alg: string }, claims: Record<string, unknown>): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader(header).sign(privateKey);
}

describe('subject-token verification over HTTP: rejections', () => {
  let h: Harness;
  /** A real token of the stand-in issuer, whose segments the malformed cases reuse. */
  let real: { token: string; header: string; payload: string; signature: string };

  before(async () => {
    h = await startHarness();
    const token = await h.issuer.projectedToken();
    real = { token, ...segmentsOf(token) };
  });
  after(() => h.close());

  it('a valid projected token is accepted (the baseline every rejection departs from)', async () => {
    const res = await expectAccepted(h, real.token);
    assert.equal(res.body.scope, 'payments-read payments-write status-read');
  });

  describe('malformed_token', () => {
    it('two segments', async () => {
      await expectRejected(h, `${real.header}.${real.payload}`, {
        reason: 'malformed_token',
        phrases: ['not a compact JWS', 'three base64url segments'],
      });
    });

    it('a JWE (five segments)', async () => {
      const jwe = [b64u({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: h.issuer.kid }), real.signature.slice(0, 40), b64u('iv-iv-iv-iv'), real.payload, b64u('tag-tag-tag-tag')].join('.');
      await expectRejected(h, jwe, { reason: 'malformed_token', phrases: ['JWE (five segments)', 'signed JWT (three segments) is required'] });
    });

    it('non-base64url characters (standard base64 with + / =)', async () => {
      // A 2048-bit RSA signature is 256 bytes, so its standard base64 always ends in "==".
      const standard = Buffer.from(real.signature, 'base64url').toString('base64');
      assert.match(standard, /=$/, 'the re-encoded signature really uses non-base64url characters');
      await expectRejected(h, `${real.header}.${real.payload}.${standard}`, {
        reason: 'malformed_token',
        phrases: ['three base64url segments'],
      });
    });

    it('whitespace inside the token', async () => {
      await expectRejected(h, `${real.header}. ${real.payload}.${real.signature}`, { reason: 'malformed_token', phrases: ['compact JWS'] });
    });

    it('a header that is not JSON', async () => {
      await expectRejected(h, `${b64u('{"alg":"RS256","kid":')}.${real.payload}.${real.signature}`, {
        reason: 'malformed_token',
        phrases: ['header is not base64url-encoded JSON'],
      });
    });

    it('a header that is JSON but not an object', async () => {
      await expectRejected(h, `${b64u(['RS256'])}.${real.payload}.${real.signature}`, {
        reason: 'malformed_token',
        phrases: ['header is not a JSON object'],
      });
    });

    it('a "crit" header', async () => {
      const token = craft({ alg: 'RS256', kid: h.issuer.kid, crit: ['exp'], exp: 0 }, real.payload, real.signature);
      await expectRejected(h, token, { reason: 'malformed_token', phrases: ['"crit"/"b64"', 'not accepted'] });
    });

    it('an unencoded payload ("b64": false)', async () => {
      // The payload segment still looks like base64url: a verifier that ignored b64 would read claims from it.
      const token = craft({ alg: 'RS256', kid: h.issuer.kid, b64: false, crit: ['b64'] }, real.payload, real.signature);
      await expectRejected(h, token, { reason: 'malformed_token', phrases: ['"crit"/"b64"'] });
      const withoutCrit = craft({ alg: 'RS256', kid: h.issuer.kid, b64: false }, real.payload, real.signature);
      await expectRejected(h, withoutCrit, { reason: 'malformed_token', phrases: ['"crit"/"b64"'] });
    });

    it('"exp" as a string of digits, validly signed', async () => {
      const token = await h.issuer.projectedToken({ extra: { exp: '9999999999' } });
      await expectRejected(h, token, { reason: 'malformed_token', phrases: ['"exp"', 'NumericDate'] });
    });

    it('a payload that is JSON but not an object', async () => {
      await expectRejected(h, `${real.header}.${b64u(['not', 'claims'])}.${real.signature}`, {
        reason: 'malformed_token',
        phrases: ['payload is not a JSON object'],
      });
    });

    it('a "sub" that disagrees with the kubernetes.io claim', async () => {
      const token = await h.issuer.projectedToken({ extra: { sub: 'system:serviceaccount:kube-system:admin' } });
      await expectRejected(h, token, { reason: 'malformed_token', phrases: ['"sub" does not match'] });
    });
  });

  describe('token_too_large', () => {
    it('a validly signed token over 16 KiB is refused before parsing', async () => {
      const token = await h.issuer.projectedToken({ extra: { padding: 'x'.repeat(MAX_SUBJECT_TOKEN_BYTES) } });
      assert.ok(Buffer.byteLength(token) > MAX_SUBJECT_TOKEN_BYTES);
      const jwksBefore = h.issuer.requests.get(JWKS_PATH) ?? 0;
      await expectRejected(h, token, { reason: 'token_too_large', phrases: [`larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes`] });
      assert.equal(h.issuer.requests.get(JWKS_PATH) ?? 0, jwksBefore, 'no key was fetched for it');
    });

    it('the limit counts bytes, not characters', async () => {
      const token = 'é'.repeat(MAX_SUBJECT_TOKEN_BYTES / 2 + 1);
      assert.ok(token.length < MAX_SUBJECT_TOKEN_BYTES);
      await expectRejected(h, token, { reason: 'token_too_large', phrases: ['larger than'] });
    });
  });

  describe('unsupported_algorithm', () => {
    it('"alg": "none" with an empty signature', async () => {
      for (const alg of ['none', 'None', 'NONE']) {
        await expectRejected(h, `${b64u({ alg, kid: h.issuer.kid })}.${real.payload}.`, {
          reason: 'unsupported_algorithm',
          phrases: [`algorithm "${alg}" is not accepted`, 'accepted: RS256'],
        });
      }
    });

    it('no "alg" at all', async () => {
      await expectRejected(h, craft({ kid: h.issuer.kid }, real.payload, real.signature), {
        reason: 'unsupported_algorithm',
        phrases: ['algorithm (none) is not accepted'],
      });
    });

    it('HS256 signed with the issuer\'s RSA public key as the HMAC secret (algorithm confusion)', async () => {
      const jwk = await publishedJwk(h);
      const pem = await exportSPKI((await importJWK(jwk, 'RS256')) as CryptoKey);
      const secrets = { 'public key PEM': pem, 'public JWK JSON': JSON.stringify(jwk), 'PEM without newline': pem.trim() };
      for (const [what, secret] of Object.entries(secrets)) {
        const signingInput = `${b64u({ alg: 'HS256', kid: h.issuer.kid, typ: 'JWT' })}.${real.payload}`;
        const token = `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
        const res = await expectRejected(h, token, { reason: 'unsupported_algorithm', phrases: ['"HS256" is not accepted'] });
        assert.ok(!res.text.includes(pem.slice(30, 80)), `${what}: no key material in the body`);
      }
    });

    it('ES256 in the header while the kid names the issuer\'s RSA key', async () => {
      const attacker = await attackerKey('ES256');
      const token = await signWith(attacker.privateKey, { alg: 'ES256', kid: h.issuer.kid }, h.issuer.projectedClaims());
      await expectRejected(h, token, {
        reason: 'unsupported_algorithm',
        phrases: [`key "${h.issuer.kid}" cannot verify ES256 signatures`],
      });
    });
  });

  describe('unknown_kid', () => {
    it('signed with a key the issuer never published, under that key\'s own kid', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims(), { key: 'unpublished' });
      await expectRejected(h, token, { reason: 'unknown_kid', phrases: ['does not publish (unknown "kid")', 'retry shortly'] });
    });

    it('signed with the unpublished key under a random kid', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims(), { key: 'unpublished', header: { kid: randomUUID() } });
      await expectRejected(h, token, { reason: 'unknown_kid', phrases: ['unknown "kid"'] });
    });
  });

  describe('bad_signature', () => {
    it('payload modified after signing (another namespace)', async () => {
      const token = await h.issuer.projectedToken();
      const { header, payload, signature } = segmentsOf(token);
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      const tampered = { ...claims, sub: 'system:serviceaccount:kube-system:argo-runner', 'kubernetes.io': { ...(claims['kubernetes.io'] as object), namespace: 'kube-system' } };
      await expectRejected(h, `${header}.${b64u(tampered)}.${signature}`, { reason: 'bad_signature', phrases: ['signature does not verify'] });
    });

    it('signature of the unpublished key under the published key\'s kid', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims(), { key: 'unpublished', header: { kid: h.issuer.kid } });
      await expectRejected(h, token, { reason: 'bad_signature', phrases: ['signature does not verify with its issuer\'s key'] });
    });

    it('signature truncated', async () => {
      const token = await h.issuer.projectedToken();
      const { header, payload, signature } = segmentsOf(token);
      const truncated = b64u(Buffer.from(signature, 'base64url').subarray(0, 200));
      await expectRejected(h, `${header}.${payload}.${truncated}`, { reason: 'bad_signature', phrases: ['signature does not verify'] });
    });

    it('signature missing (empty third segment) on an RS256 token', async () => {
      await expectRejected(h, `${real.header}.${real.payload}.`, { reason: 'bad_signature', phrases: ['has no signature'] });
    });
  });

  describe('unknown_issuer', () => {
    it('another issuer, validly signed: refused before any key is fetched for it', async () => {
      const other = 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123';
      const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { iss: other } }));
      const jwksBefore = h.issuer.requests.get(JWKS_PATH) ?? 0;
      await expectRejected(h, token, {
        reason: 'unknown_issuer',
        phrases: [`issuer "${other}" is not trusted`, 'trailing slash included'],
      });
      assert.equal(h.issuer.requests.get(JWKS_PATH) ?? 0, jwksBefore);
    });

    it('the configured issuer with a trailing slash added', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { iss: `${h.issuer.issuer}/` } }));
      await expectRejected(h, token, { reason: 'unknown_issuer', phrases: [`"${h.issuer.issuer}/" is not trusted`] });
    });

    it('no "iss" at all', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { iss: undefined } }));
      await expectRejected(h, token, { reason: 'missing_claim', phrases: ['no "iss" claim'] });
    });
  });

  describe('audience_mismatch', () => {
    it('only other audiences', async () => {
      const token = await h.issuer.projectedToken({ audience: ['https://kubernetes.default.svc', 'vault'] });
      await expectRejected(h, token, {
        reason: 'audience_mismatch',
        phrases: ['"https://kubernetes.default.svc", "vault" is not one this broker accepts', `audience "${SUBJECT_AUDIENCE}"`],
      });
    });

    it('a single string audience of someone else', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { aud: 'sts.amazonaws.com' } }));
      await expectRejected(h, token, { reason: 'audience_mismatch', phrases: ['"sts.amazonaws.com" is not one'] });
    });

    it('no audience', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { aud: undefined } }));
      await expectRejected(h, token, { reason: 'audience_mismatch', phrases: ['audience (none)'] });
    });

    it('the audience differs only by case', async () => {
      const token = await h.issuer.projectedToken({ audience: SUBJECT_AUDIENCE.toUpperCase() });
      await expectRejected(h, token, { reason: 'audience_mismatch', phrases: [`"${SUBJECT_AUDIENCE.toUpperCase()}"`] });
    });

    it('an array holding the right audience among others is accepted', async () => {
      const token = await h.issuer.projectedToken({ audience: ['https://kubernetes.default.svc', SUBJECT_AUDIENCE, 'vault'] });
      await expectAccepted(h, token);
    });

    it('the right audience as a plain string is accepted', async () => {
      const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { aud: SUBJECT_AUDIENCE } }));
      await expectAccepted(h, token);
    });
  });

  describe('times (clock skew 30s)', () => {
    it('expired long ago: says how long, and to re-read the projected token file', async () => {
      const token = await h.issuer.projectedToken({ lifetimeSeconds: 3600, offsetSeconds: -4200 });
      const res = await expectRejected(h, token, {
        reason: 'expired',
        phrases: ['expired 10m ago', 'Its lifetime was 1h', 're-read the file for every call'],
      });
      assert.doesNotMatch(res.body.error_description, /node clock/);
      const line = h.logs.lines.findLast((l) => l.reason === 'expired');
      assert.deepEqual(line?.facts, { expiredForSeconds: 600, lifetimeSeconds: 3600, issuer: 'test-cluster' });
    });

    it('a token kept by a step past its lifetime (the harness clock moves on)', async () => {
      const token = await h.issuer.projectedToken({ lifetimeSeconds: 600 });
      const start = h.clock.now();
      try {
        h.clock.advance(600 + 3 * 3600);
        await expectRejected(h, token, { reason: 'expired', phrases: ['expired 3h ago', 'Its lifetime was 10m', 're-read the file'] });
      } finally {
        h.clock.set(start);
      }
    });

    it('expired two minutes ago: points at clocks or the kubelet\'s rotation, not at caching', async () => {
      const token = await h.issuer.projectedToken({ lifetimeSeconds: 600, offsetSeconds: -720 });
      const res = await expectRejected(h, token, { reason: 'expired', phrases: ['expired 2m ago', 'clock'] });
      assert.doesNotMatch(res.body.error_description, /re-read/);
    });

    it('just past the skew: expired 30s ago', async () => {
      const token = await h.issuer.projectedToken({ lifetimeSeconds: 600, offsetSeconds: -630 });
      await expectRejected(h, token, { reason: 'expired', phrases: ['expired 30s ago'] });
    });

    it('expired 10s ago, within the clock skew: accepted', async () => {
      const token = await h.issuer.projectedToken({ lifetimeSeconds: 600, offsetSeconds: -610 });
      await expectAccepted(h, token);
    });

    it('nbf ahead beyond the skew: not_yet_valid', async () => {
      const token = await h.issuer.projectedToken({ offsetSeconds: 120 });
      await expectRejected(h, token, {
        reason: 'not_yet_valid',
        phrases: ['not valid for another 2m', '"nbf"', 'allowed clock skew 30s', 'NTP'],
      });
    });

    it('nbf ahead within the skew: accepted', async () => {
      const token = await h.issuer.projectedToken({ offsetSeconds: 20 });
      await expectAccepted(h, token);
    });

    it('iat ahead beyond the skew, nbf absent: issued_in_future', async () => {
      const token = await h.issuer.projectedToken({ offsetSeconds: 300, extra: { nbf: undefined } });
      assert.equal('nbf' in JSON.parse(Buffer.from(segmentsOf(token).payload, 'base64url').toString('utf8')), false);
      await expectRejected(h, token, {
        reason: 'issued_in_future',
        phrases: ['issued 5m in the future', '"iat"', 'allowed clock skew 30s'],
      });
    });
  });

  describe('missing_claim and legacy_token', () => {
    it('no "exp"', async () => {
      const token = await h.issuer.projectedToken({ extra: { exp: undefined } });
      await expectRejected(h, token, { reason: 'missing_claim', phrases: ['no "exp" claim', 'only tokens with an expiry'] });
    });

    it('a kind: kubernetes issuer\'s token without the kubernetes.io claim', async () => {
      const token = await h.issuer.projectedToken({ extra: { 'kubernetes.io': undefined } });
      await expectRejected(h, token, { reason: 'missing_claim', phrases: ['lacks the "kubernetes.io" claim'] });
    });

    it('a kubernetes.io claim without a namespace', async () => {
      const claims = h.issuer.projectedClaims();
      const { namespace: _namespace, ...kube } = claims['kubernetes.io'] as Record<string, unknown>;
      const token = await h.issuer.sign({ ...claims, 'kubernetes.io': kube });
      await expectRejected(h, token, { reason: 'missing_claim', phrases: ['"kubernetes.io.namespace"'] });
    });

    it('a legacy Secret-based service-account token signed by the issuer\'s key', async () => {
      const legacy = {
        iss: 'kubernetes/serviceaccount',
        'kubernetes.io/serviceaccount/namespace': 'payments',
        'kubernetes.io/serviceaccount/secret.name': 'argo-runner-token-x7k2p',
        'kubernetes.io/serviceaccount/service-account.name': 'argo-runner',
        'kubernetes.io/serviceaccount/service-account.uid': randomUUID(),
        sub: 'system:serviceaccount:payments:argo-runner',
      };
      await expectRejected(h, await h.issuer.sign(legacy), {
        reason: 'legacy_token',
        phrases: ['legacy Secret-based service-account token', 'Mount a projected service-account token'],
      });
      const { iss: _iss, ...withoutIss } = legacy;
      await expectRejected(h, await h.issuer.sign(withoutIss), { reason: 'legacy_token', phrases: ['legacy'] });
    });
  });

  describe('key-locating headers are never followed', () => {
    let attackerServer: Server;
    let attackerUrl: string;
    let attackerRequests = 0;
    let attacker: Awaited<ReturnType<typeof attackerKey>>;

    before(async () => {
      attacker = await attackerKey('RS256');
      // Serves the attacker's key on every path, so that following any header would "work".
      attackerServer = createServer((_req, res) => {
        attackerRequests += 1;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [attacker.publicJwk] }));
      });
      await new Promise<void>((resolve) => attackerServer.listen(0, '127.0.0.1', resolve));
      attackerUrl = `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}`;
    });
    after(
      () =>
        new Promise<void>((resolve) => {
          attackerServer.closeAllConnections();
          attackerServer.close(() => resolve());
        }),
    );

    function attackerHeaders(): Record<string, unknown> {
      return {
        jku: `${attackerUrl}/jwks.json`,
        x5u: `${attackerUrl}/cert.pem`,
        x5c: [attacker.spkiDer],
        jwk: attacker.publicJwk,
      };
    }

    it('a token of the real key carrying jku/x5u/x5c/jwk still verifies on the real key', async () => {
      const token = await h.issuer.projectedToken({ header: attackerHeaders() });
      await expectAccepted(h, token);
      assert.equal(attackerRequests, 0);
    });

    it('signed by the attacker under the attacker\'s kid: unknown_kid', async () => {
      const token = await signWith(attacker.privateKey, { alg: 'RS256', kid: attacker.kid, ...attackerHeaders() }, h.issuer.projectedClaims());
      await expectRejected(h, token, { reason: 'unknown_kid', phrases: ['unknown "kid"'] });
      assert.equal(attackerRequests, 0);
    });

    it('signed by the attacker under the real kid, with the attacker\'s key embedded: bad_signature', async () => {
      const token = await signWith(attacker.privateKey, { alg: 'RS256', kid: h.issuer.kid, ...attackerHeaders() }, h.issuer.projectedClaims());
      await expectRejected(h, token, { reason: 'bad_signature', phrases: ['signature does not verify'] });
      assert.equal(attackerRequests, 0);
    });

    it('signed by the attacker with no kid and only an embedded jwk: bad_signature', async () => {
      const token = await signWith(attacker.privateKey, { alg: 'RS256', jwk: attacker.publicJwk }, h.issuer.projectedClaims());
      await expectRejected(h, token, { reason: 'bad_signature', phrases: ['signature does not verify'] });
      assert.equal(attackerRequests, 0, 'the attacker server received no request at all');
    });
  });

  describe('hostile kid values give a client error, never a 500', () => {
    const cases: ReadonlyArray<readonly [string, unknown, ReasonCode]> = [
      ['path traversal', '../../../../etc/passwd', 'unknown_kid'],
      ['encoded path traversal', '..%2f..%2f..%2fetc%2fpasswd', 'unknown_kid'],
      ['SQL', "' OR '1'='1'; DROP TABLE keys; --", 'unknown_kid'],
      ['a NUL byte', 'kid\u0000.json', 'unknown_kid'],
      ['a URL', 'http://127.0.0.1:1/jwks.json', 'unknown_kid'],
      ['an empty string', '', 'unknown_kid'],
      ['__proto__', '__proto__', 'unknown_kid'],
      ['300 characters', 'k'.repeat(300), 'malformed_token'],
      ['a number', 42, 'malformed_token'],
      ['an object', { $ne: null }, 'malformed_token'],
      ['an array', ['kid-in-array'], 'malformed_token'],
    ];

    it('each case, and the issuer is asked at most once for the whole batch', async () => {
      const jwksBefore = h.issuer.requests.get(JWKS_PATH) ?? 0;
      for (const [name, kid, reason] of cases) {
        const token = await h.issuer.sign(h.issuer.projectedClaims(), { header: { kid } });
        const res = await expectRejected(h, token, { reason });
        assert.ok(res.status < 500, name);
      }
      assert.ok((h.issuer.requests.get(JWKS_PATH) ?? 0) - jwksBefore <= 1, 'unknown kids are subject to the cool-down');
    });
  });
});

describe('subject-token verification over HTTP: an AKS-style issuer with a trailing slash', () => {
  const h = useHarness({ issuer: { trailingSlash: true } });

  it('a token whose iss lacks the slash is unknown_issuer; with the slash it is accepted', async () => {
    assert.ok(h.issuer.issuer.endsWith('/'));
    const withoutSlash = h.issuer.issuer.replace(/\/$/, '');
    const token = await h.issuer.sign(h.issuer.projectedClaims({ extra: { iss: withoutSlash } }));
    await expectRejected(h, token, {
      reason: 'unknown_issuer',
      phrases: [`issuer "${withoutSlash}" is not trusted`, 'trailing slash included'],
    });
    await expectAccepted(h, await h.issuer.projectedToken());
  });
});

describe('subject-token verification over HTTP: a kind: oidc issuer', () => {
  const h = useHarness({
    config: (issuerUrl) => ({
      issuers: [{ name: 'ci-oidc', issuer: issuerUrl, audiences: [SUBJECT_AUDIENCE], kind: 'oidc' }],
      tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600, subject: '{issuer}:{sub}' },
      rules: [{ name: 'ci-by-claims', match: { claims: { '/sub': 'repo:acme/orders:*' } }, policies: ['orders-read'] }],
    }),
  });

  it('accepts a token without the kubernetes.io claim when a rule matches by claims', async () => {
    const claims = h.issuer.projectedClaims({ extra: { 'kubernetes.io': undefined, sub: 'repo:acme/orders:ref:refs/heads/main' } });
    const res = await expectAccepted(h, await h.issuer.sign(claims));
    assert.equal(res.body.scope, 'orders-read');
  });

  it('still refuses a token without "exp"', async () => {
    const claims = h.issuer.projectedClaims({ extra: { 'kubernetes.io': undefined, sub: 'repo:acme/orders:ref:refs/heads/main', exp: undefined } });
    await expectRejected(h, await h.issuer.sign(claims), { reason: 'missing_claim', phrases: ['no "exp" claim'] });
  });
});

describe('subject-token verification over HTTP: the issuer is down', () => {
  const h = useHarness();

  it('keys never loaded: 503 temporarily_unavailable / issuer_unavailable with Retry-After, then recovers', async () => {
    h.issuer.setAvailable(false);
    const token = await h.issuer.projectedToken();
    const res = await expectRejected(h, token, {
      status: 503,
      error: 'temporarily_unavailable',
      reason: 'issuer_unavailable',
      phrases: ['retry shortly'],
      outcome: 'error',
    });
    assert.match(String(res.headers['retry-after']), /^[1-9][0-9]*$/);
    assert.ok(!res.body.error_description.includes(h.issuer.baseUrl), 'the issuer address is not in the body');

    h.issuer.setAvailable(true);
    h.clock.advance(2); // past the back-off between fetches of a never-loaded key set
    await expectAccepted(h, token);
  });
});
