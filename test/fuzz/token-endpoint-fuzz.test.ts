import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { startHarness, PUBLIC_URL, SUBJECT_AUDIENCE, type Harness } from '../support/broker-harness.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { REASON_CODES, type ReasonCode } from '../../src/server/errors.js';
import { MAX_SUBJECT_TOKEN_BYTES } from '../../src/server/issuers/verify-subject-token.js';
import { startRawIssuer, type RawIssuer } from '../security/raw-issuer.js';
import { auditCount, memoryCache } from '../security/refusal.js';

/*
 * Property-based fuzzing of POST /token with an oracle. Every generated request is a valid exchange plus up to two
 * defects drawn from a catalogue (each naming the reason codes it may cause), with random extra header members,
 * random extra claims and random request options. The oracle says, independently of the broker's code, whether a
 * token must be issued: only for a validly signed, in-date token of a configured issuer whose identity a rule
 * grants, requested by a well-formed RFC 8693 request the grant can satisfy. Properties:
 *   - never a 5xx;
 *   - a 200 exactly when the oracle says so, with the policies the oracle computes, verifiable with the broker's JWKS;
 *   - every refusal has exactly {error, error_description, reason}, a known reason, and, when the case has one
 *     defect, a reason that defect allows; no audit record and no cache entry for it;
 *   - audit records = tokens issued.
 * Two more properties throw random subject tokens and random form bodies at the endpoint (never 5xx, never 200).
 *
 * Seeds are fixed (reproducible: a failure prints the seed and path to replay), runs bounded in count and time.
 */

const SEEDS = { structured: 0x7b0c_2025, randomTokens: 0x5eed_0001, randomForms: 0x5eed_0002 } as const;
const RUNS = { structured: 300, randomTokens: 200, randomForms: 200 } as const;
const TIME_LIMIT_MS = 60_000;

const RSA_ISSUER = 'https://fuzz-rsa.example.test';
const EC_ISSUER = 'https://fuzz-ec.example.test';
const SKEW = 30;

const b64u = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

/** What can be wrong with an otherwise valid request, and which reasons each defect may cause on its own. */
const DEFECTS = {
  algNone: ['unsupported_algorithm'],
  algHs256: ['unsupported_algorithm'],
  algOtherFamily: ['unsupported_algorithm'],
  kidRandom: ['unknown_kid'],
  kidOtherIssuer: ['unknown_kid'],
  kidNotString: ['malformed_token'],
  kidTooLong: ['malformed_token'],
  wrongKey: ['bad_signature'],
  critHeader: ['malformed_token'],
  b64False: ['malformed_token'],
  issUnknown: ['unknown_issuer'],
  issTrailingSlash: ['unknown_issuer'],
  issOtherConfigured: ['unknown_kid', 'unsupported_algorithm'],
  issAbsent: ['missing_claim'],
  audWrong: ['audience_mismatch'],
  audAbsent: ['audience_mismatch'],
  audNotString: ['audience_mismatch'],
  expired: ['expired'],
  expString: ['malformed_token'],
  expAbsent: ['missing_claim'],
  nbfFuture: ['not_yet_valid'],
  nbfString: ['malformed_token'],
  iatFuture: ['issued_in_future'],
  kubernetesClaimAbsent: ['missing_claim'],
  namespaceAbsent: ['missing_claim'],
  subMismatch: ['malformed_token'],
  legacy: ['legacy_token'],
  payloadFlipped: ['bad_signature', 'malformed_token'],
  signatureTruncated: ['bad_signature'],
  signatureStripped: ['bad_signature'],
  extraSegment: ['malformed_token'],
  nonBase64Char: ['malformed_token'],
  jweShape: ['malformed_token'],
  grantWrong: ['unsupported_grant_type'],
  grantAbsent: ['invalid_request'],
  subjectTokenTypeWrong: ['unsupported_token_type'],
  subjectTokenTypeAbsent: ['invalid_request'],
  parameterRepeated: ['invalid_request'],
  // The fuzz configuration has no apis block: a resource is refused after the grant is decided, never ignored.
  resourceGiven: ['unknown_resource'],
  actorTokenGiven: ['invalid_request'],
  audienceNotAllowed: ['audience_not_allowed'],
  requestedTypeUnsupported: ['unsupported_token_type'],
  scopeUngranted: ['scope_not_granted'],
} as const satisfies Record<string, readonly ReasonCode[]>;
type Defect = keyof typeof DEFECTS;
const DEFECT_NAMES = Object.keys(DEFECTS) as Defect[];
/** Defects of the form; with Authorization: Bearer there is no subject_token_type and grant_type is optional. */
const FORM_ONLY: ReadonlySet<Defect> = new Set(['grantAbsent', 'subjectTokenTypeWrong', 'subjectTokenTypeAbsent']);

interface Case {
  readonly issuer: 'rsa' | 'ec';
  readonly namespace: 'payments' | 'payments-eu' | 'orders' | 'kube-system';
  readonly serviceAccount: 'argo-runner' | 'default';
  readonly pod: number;
  readonly transport: 'form' | 'bearer';
  readonly scope: string | undefined;
  readonly audience: string | undefined;
  readonly requestedTokenType: string | undefined;
  readonly subjectTokenType: string;
  readonly kidAbsent: boolean;
  readonly expWithinSkew: boolean;
  readonly nbf: 'absent' | 'past' | 'withinSkew';
  readonly aud: 'string' | 'array' | 'arrayWithOthers';
  readonly headerExtras: Readonly<Record<string, unknown>>;
  readonly claimExtras: Readonly<Record<string, unknown>>;
  readonly defects: readonly Defect[];
}

const RESERVED_HEADER = new Set(['alg', 'kid', 'crit', 'b64', 'enc', 'zip']);
const RESERVED_CLAIMS = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'sub', 'kubernetes.io', 'kubernetes.io/serviceaccount/namespace']);
const extraKey = fc.string({ minLength: 1, maxLength: 12 });
const extraValue = fc.jsonValue({ maxDepth: 2 });

const caseArbitrary: fc.Arbitrary<Case> = fc.record({
  issuer: fc.constantFrom('rsa' as const, 'ec' as const),
  namespace: fc.constantFrom('payments' as const, 'payments-eu' as const, 'orders' as const, 'kube-system' as const),
  serviceAccount: fc.constantFrom('argo-runner' as const, 'default' as const),
  pod: fc.integer({ min: 0, max: 4 }),
  transport: fc.constantFrom('form' as const, 'bearer' as const),
  scope: fc.constantFrom(undefined, 'status-read', 'payments-read', 'payments-admin', 'status-read payments-admin', 'payments-write payments-read'),
  audience: fc.constantFrom(undefined, 'tyk', 'tyk-internal'),
  requestedTokenType: fc.constantFrom(undefined, TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS_TOKEN),
  subjectTokenType: fc.constantFrom(TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN),
  kidAbsent: fc.boolean(),
  expWithinSkew: fc.boolean(),
  nbf: fc.constantFrom('absent' as const, 'past' as const, 'withinSkew' as const),
  aud: fc.constantFrom('string' as const, 'array' as const, 'arrayWithOthers' as const),
  headerExtras: fc.dictionary(extraKey.filter((k) => !RESERVED_HEADER.has(k)), extraValue, { maxKeys: 3 }),
  claimExtras: fc.dictionary(extraKey.filter((k) => !RESERVED_CLAIMS.has(k)), extraValue, { maxKeys: 3 }),
  defects: fc.subarray(DEFECT_NAMES, { maxLength: 2 }),
});

/** The oracle's view of the rules (test configuration below): which policies an identity is granted or may ask for. */
function grantOf(c: Case): { granted: string[]; requestable: string[]; ttl: number } {
  const payments = c.issuer === 'rsa' && (c.namespace === 'payments' || c.namespace.startsWith('payments-')) && c.serviceAccount.startsWith('argo-');
  return {
    granted: [...(payments ? ['payments-read', 'payments-write'] : []), 'status-read'],
    requestable: payments ? ['payments-admin'] : [],
    ttl: payments ? 300 : 600,
  };
}

/** The policies a valid request gets, or undefined when its scope asks for something not granted. */
function expectedPolicies(c: Case): string[] | undefined {
  const { granted, requestable } = grantOf(c);
  if (c.scope === undefined) return granted;
  const asked = c.scope.split(' ');
  const available = new Set([...granted, ...requestable]);
  if (!asked.every((policy) => available.has(policy))) return undefined;
  return [...granted, ...requestable].filter((policy) => asked.includes(policy));
}

describe('fuzz: POST /token', { timeout: 300_000 }, () => {
  let h: Harness;
  let rsa: RawIssuer;
  let ec: RawIssuer;
  let attackerRsa: RawIssuer;
  let attackerEc: RawIssuer;
  let brokerJwks: ReturnType<typeof createLocalJWKSet>;

  before(async () => {
    rsa = await startRawIssuer({ issuer: RSA_ISSUER, alg: 'RS256' });
    ec = await startRawIssuer({ issuer: EC_ISSUER, alg: 'ES256' });
    attackerRsa = await startRawIssuer({ issuer: RSA_ISSUER, alg: 'RS256' });
    attackerEc = await startRawIssuer({ issuer: EC_ISSUER, alg: 'ES256' });
    h = await startHarness({
      config: () => ({
        issuers: [
          { name: 'fuzz-rsa', issuer: RSA_ISSUER, audiences: [SUBJECT_AUDIENCE], jwksFile: rsa.jwksFile, clockSkewSeconds: SKEW },
          { name: 'fuzz-ec', issuer: EC_ISSUER, audiences: [SUBJECT_AUDIENCE], jwksFile: ec.jwksFile, clockSkewSeconds: SKEW },
        ],
        rules: [
          {
            name: 'payments-ci',
            match: { issuers: ['fuzz-rsa'], namespaces: ['payments', 'payments-*'], serviceAccounts: ['argo-*'] },
            policies: ['payments-read', 'payments-write'],
            requestable: ['payments-admin'],
            ttlSeconds: 300,
          },
          { name: 'everyone-reads-status', match: { namespaces: ['*'] }, policies: ['status-read'] },
        ],
        // Per-pod mint limits would turn repeated valid cases into 429s; they are tested in test/limits.
        limits: { minting: { enabled: false, ratePerMinute: 60, burst: 20 } },
      }),
    });
    await h.broker.warmUp();
    brokerJwks = createLocalJWKSet((await h.http.get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet);
  });
  after(async () => {
    await h.close();
    for (const issuer of [rsa, ec, attackerRsa, attackerEc]) await issuer.close();
  });

  /** Builds the subject token of a case: the valid token, with the case's token defects applied. */
  function subjectTokenOf(c: Case): string {
    const d = new Set(c.defects);
    const own = c.issuer === 'rsa' ? rsa : ec;
    const other = c.issuer === 'rsa' ? ec : rsa;
    const now = Math.floor(h.clock.now() / 1000);

    const iat = now;
    const kube: Record<string, unknown> = {
      ...(d.has('namespaceAbsent') ? {} : { namespace: c.namespace }),
      pod: { name: `step-${c.pod}`, uid: `00000000-0000-4000-8000-00000000000${c.pod}` },
      serviceaccount: { name: c.serviceAccount, uid: '11111111-0000-4000-8000-000000000000' },
    };
    const claims: Record<string, unknown> = {
      ...c.claimExtras,
      iss: d.has('issUnknown') ? 'https://unknown.example.test' : d.has('issTrailingSlash') ? `${own.issuer}/` : d.has('issOtherConfigured') ? other.issuer : own.issuer,
      aud: d.has('audWrong') ? ['vault'] : d.has('audNotString') ? [42, { aud: SUBJECT_AUDIENCE }] : c.aud === 'string' ? SUBJECT_AUDIENCE : c.aud === 'array' ? [SUBJECT_AUDIENCE] : ['https://kubernetes.default.svc', SUBJECT_AUDIENCE],
      exp: d.has('expired') ? now - 600 : d.has('expString') ? String(now + 3600) : c.expWithinSkew ? now - SKEW + 10 : now + 3600,
      iat: d.has('iatFuture') ? now + 600 : iat,
      ...(c.nbf === 'past' && { nbf: now - 60 }),
      ...(c.nbf === 'withinSkew' && { nbf: now + SKEW - 10 }),
      ...(d.has('nbfFuture') && { nbf: now + 600 }),
      ...(d.has('nbfString') && { nbf: String(now) }),
      sub: d.has('subMismatch') ? 'system:serviceaccount:kube-system:admin' : `system:serviceaccount:${c.namespace}:${c.serviceAccount}`,
      ...(!d.has('kubernetesClaimAbsent') && { 'kubernetes.io': kube }),
    };
    if (d.has('issAbsent')) delete claims.iss;
    if (d.has('audAbsent')) delete claims.aud;
    if (d.has('expAbsent')) delete claims.exp;
    if (d.has('iatFuture')) delete claims.nbf;
    if (d.has('legacy')) {
      for (const name of ['iss', 'aud', 'exp', 'iat', 'nbf', 'kubernetes.io']) delete claims[name];
      claims['kubernetes.io/serviceaccount/namespace'] = c.namespace;
    }

    const alg = d.has('algNone') ? 'none' : d.has('algHs256') ? 'HS256' : d.has('algOtherFamily') ? (own.alg === 'RS256' ? 'ES256' : 'RS256') : own.alg;
    const kid = d.has('kidRandom')
      ? 'no-such-kid'
      : d.has('kidOtherIssuer')
        ? other.kid
        : d.has('kidNotString')
          ? 7
          : d.has('kidTooLong')
            ? 'k'.repeat(300)
            : own.kid;
    // A kid is needed where the defect is about it, or where only a kid can point at the issuer's key.
    const needsKid = d.has('kidRandom') || d.has('kidOtherIssuer') || d.has('kidNotString') || d.has('kidTooLong') || d.has('algOtherFamily') || d.has('issOtherConfigured');
    const header: Record<string, unknown> = {
      ...c.headerExtras,
      alg,
      ...((!c.kidAbsent || needsKid) && { kid }),
      ...(d.has('critHeader') && { crit: ['https://fuzz.example/ext'], 'https://fuzz.example/ext': 1 }),
      ...(d.has('b64False') && { b64: false, crit: ['b64'] }),
    };
    const headerJson = JSON.stringify(header);
    const payloadJson = JSON.stringify(claims);
    let token: string;
    if (alg === 'none') {
      token = `${b64u(headerJson)}.${b64u(payloadJson)}.`;
    } else if (alg === 'HS256') {
      const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
      token = `${input}.${createHmac('sha256', JSON.stringify(own.publicJwk)).update(input).digest('base64url')}`;
    } else {
      // Each key signs with its own algorithm; a header naming another family is refused before the signature.
      const signer = d.has('wrongKey') ? (own.alg === 'RS256' ? attackerRsa : attackerEc) : d.has('algOtherFamily') ? (own.alg === 'RS256' ? attackerEc : attackerRsa) : own;
      token = signer.signRaw(headerJson, payloadJson);
    }
    let [h64 = '', p64 = '', s64 = ''] = token.split('.');
    if (d.has('payloadFlipped')) {
      const i = Math.floor(p64.length / 2);
      p64 = `${p64.slice(0, i)}${p64[i] === 'A' ? 'B' : 'A'}${p64.slice(i + 1)}`;
    }
    if (d.has('signatureTruncated')) s64 = s64.slice(0, -4);
    if (d.has('signatureStripped')) s64 = '';
    token = `${h64}.${p64}.${s64}`;
    if (d.has('extraSegment')) token = `${token}.${s64}`;
    if (d.has('nonBase64Char')) token = `${h64}.${p64}+.${s64}`;
    if (d.has('jweShape')) token = `${h64}.${p64}.${s64}.${p64}.${s64}`;
    return token;
  }

  /** Defects that apply to this case (the form-only ones do nothing with Authorization: Bearer). */
  function effectiveDefects(c: Case): Defect[] {
    return c.defects.filter((defect) => c.transport === 'form' || !FORM_ONLY.has(defect));
  }

  function requestOf(c: Case, token: string) {
    const d = new Set(c.defects);
    const params: [string, string][] = [];
    if (c.transport === 'form') {
      if (!d.has('grantAbsent')) params.push(['grant_type', d.has('grantWrong') ? 'password' : GRANT_TYPE_TOKEN_EXCHANGE]);
      if (!d.has('subjectTokenTypeAbsent')) params.push(['subject_token_type', d.has('subjectTokenTypeWrong') ? 'urn:ietf:params:oauth:token-type:saml2' : c.subjectTokenType]);
      params.push(['subject_token', token]);
    } else if (d.has('grantWrong')) {
      params.push(['grant_type', 'client_credentials']);
    }
    const scope = d.has('scopeUngranted') ? 'cluster-admin' : c.scope;
    if (scope !== undefined) params.push(['scope', scope]);
    const audience = d.has('audienceNotAllowed') ? 'https://evil.example' : c.audience;
    if (audience !== undefined) params.push(['audience', audience]);
    const requested = d.has('requestedTypeUnsupported') ? 'urn:ietf:params:oauth:token-type:saml2' : c.requestedTokenType;
    if (requested !== undefined) params.push(['requested_token_type', requested]);
    if (d.has('resourceGiven')) params.push(['resource', 'https://api.example']);
    if (d.has('actorTokenGiven')) params.push(['actor_token', token]);
    if (d.has('parameterRepeated')) params.push(['audience', 'tyk'], ['audience', 'tyk']);
    const body = new URLSearchParams(params).toString();
    const req = h.http.post('/token');
    if (c.transport === 'bearer') req.set('Authorization', `Bearer ${token}`);
    return body === '' ? req : req.set('Content-Type', 'application/x-www-form-urlencoded').send(body);
  }

  /** Common checks of any answer: never a 5xx; a refusal has the constant shape, a known reason and minted nothing. */
  function assertNoServerErrorOrLeak(res: { status: number; body: Record<string, unknown>; headers: Record<string, unknown> }): void {
    assert.ok(res.status < 500, `a ${res.status}: ${JSON.stringify(res.body)}`);
    if (res.status !== 200) {
      assert.deepEqual(Object.keys(res.body), ['error', 'error_description', 'reason']);
      assert.ok((REASON_CODES as readonly string[]).includes(String(res.body.reason)), `known reason ${String(res.body.reason)}`);
      assert.equal(res.headers['cache-control'], 'no-store');
    }
  }

  it('structured cases with up to two defects: a token exactly when the oracle grants one', async () => {
    const stats = { runs: 0, issued: 0, cached: 0, refused: 0 };
    const auditsAtStart = auditCount(h);
    await fc.assert(
      fc.asyncProperty(caseArbitrary, async (c) => {
        stats.runs++;
        const token = subjectTokenOf(c);
        const defects = effectiveDefects(c);
        const policies = expectedPolicies(c);
        const tooLarge = Buffer.byteLength(token) > MAX_SUBJECT_TOKEN_BYTES;
        const shouldMint = defects.length === 0 && policies !== undefined && !tooLarge;
        const audits = auditCount(h);
        const cached = memoryCache(h).size;
        const lines = h.logs.lines.length;
        const res = await requestOf(c, token);
        assertNoServerErrorOrLeak(res);
        if (!shouldMint) {
          assert.notEqual(res.status, 200, `no token for defects [${defects.join(', ')}]${policies === undefined ? ' and an ungranted scope' : ''}`);
          if (defects.length === 1 && !tooLarge) {
            // An ungranted scope of the case itself is a second reason the refusal may name.
            const allowed: readonly string[] = [...DEFECTS[defects[0] as Defect], ...(policies === undefined ? ['scope_not_granted'] : [])];
            assert.ok(allowed.includes(String(res.body.reason)), `defect ${defects[0]} gave ${String(res.body.reason)}, expected one of ${allowed.join(', ')}`);
          }
          if (defects.length === 0 && !tooLarge) assert.equal(res.body.reason, 'scope_not_granted');
          assert.equal(auditCount(h), audits, 'a refusal writes no audit record');
          assert.equal(memoryCache(h).size, cached, 'a refusal writes no cache entry');
          stats.refused++;
          return;
        }
        assert.equal(res.status, 200, `a valid case was refused: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.scope, (policies as string[]).join(' '));
        assert.equal(res.body.expires_in, grantOf(c).ttl);
        const { payload } = await jwtVerify(String(res.body.access_token), brokerJwks, {
          issuer: PUBLIC_URL,
          audience: c.audience ?? 'tyk',
          currentDate: new Date(h.clock.now()),
        });
        assert.equal(payload.sub, `system:serviceaccount:${c.namespace}:${c.serviceAccount}`);
        assert.deepEqual(payload.workload, {
          issuer: c.issuer === 'rsa' ? 'fuzz-rsa' : 'fuzz-ec',
          namespace: c.namespace,
          serviceAccount: c.serviceAccount,
          pod: `step-${c.pod}`,
        });
        const outcome = h.logs.lines.slice(lines).find((line) => typeof line.outcome === 'string')?.outcome;
        assert.ok(outcome === 'issued' || outcome === 'cached', String(outcome));
        assert.equal(auditCount(h), audits + (outcome === 'issued' ? 1 : 0));
        assert.equal(memoryCache(h).size, cached + (outcome === 'issued' ? 1 : 0));
        if (outcome === 'issued') stats.issued++;
        else stats.cached++;
      }),
      { seed: SEEDS.structured, numRuns: RUNS.structured, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: true, endOnFailure: true },
    );
    assert.equal(auditCount(h) - auditsAtStart, stats.issued, 'audit records = tokens issued');
    // The generator must exercise both sides of the oracle, or the property proves little.
    assert.ok(stats.issued + stats.cached >= 30 && stats.refused >= 100, JSON.stringify(stats));
  });

  it('random subject tokens (any string, JWT-like shapes, random JSON segments): never a 5xx, never a token', async () => {
    const audits = auditCount(h);
    const segment = fc.oneof(
      fc.base64String({ maxLength: 120 }).map((s) => s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')),
      fc.jsonValue({ maxDepth: 3 }).map((v) => b64u(JSON.stringify(v) ?? 'null')),
      fc.string({ maxLength: 40 }),
    );
    const tokenArbitrary = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.')),
      fc.tuple(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })), fc.jsonValue({ maxDepth: 3 }), segment).map(
        ([header, payload, signature]) => `${b64u(JSON.stringify({ alg: 'RS256', kid: rsa.kid, ...header }))}.${b64u(JSON.stringify(payload) ?? 'null')}.${signature}`,
      ),
    );
    await fc.assert(
      fc.asyncProperty(tokenArbitrary, fc.boolean(), async (token, bearer) => {
        const req = bearer
          ? h.http.post('/token').set('Authorization', `Bearer ${token}`)
          : h.http.post('/token').type('form').send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: token });
        const res = await req;
        assertNoServerErrorOrLeak(res);
        assert.notEqual(res.status, 200);
      }),
      { seed: SEEDS.randomTokens, numRuns: RUNS.randomTokens, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: true, endOnFailure: true },
    );
    assert.equal(auditCount(h), audits);
  });

  it('random form bodies, content types and headers: never a 5xx, never a token', async () => {
    const audits = auditCount(h);
    const names = fc.constantFrom('grant_type', 'subject_token', 'subject_token_type', 'scope', 'audience', 'requested_token_type', 'resource', 'actor_token', '__proto__', 'constructor', 'a[b]', '');
    const value = fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom(GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT, 'tyk', 'status-read', '%', '%E0%A4', '&', '='));
    const pairs = fc.array(fc.tuple(names, value, fc.boolean()), { maxLength: 40 });
    const contentType = fc.constantFrom(
      'application/x-www-form-urlencoded',
      'application/x-www-form-urlencoded; charset=utf-8',
      'application/x-www-form-urlencoded; charset=utf-16',
      'application/x-www-form-urlencoded; charset=bogus',
      'application/json',
      'text/plain',
      'multipart/form-data',
      '',
      '*/*',
    );
    const headers = fc.record({
      authorization: fc.option(fc.oneof(fc.string({ maxLength: 60 }), fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`)), { nil: undefined }),
      accept: fc.option(fc.constantFrom('text/plain', 'application/json', 'text/html', '*/*', 'x;q=abc', ''), { nil: undefined }),
      requestId: fc.option(fc.string({ maxLength: 140 }), { nil: undefined }),
      // The body is never actually compressed: every encoding but identity meets a body that does not decompress.
      encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress'), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(pairs, contentType, headers, async (list, type, extra) => {
        // Half the values are percent-encoded properly, the other half sent raw (broken escapes included).
        const body = list.map(([name, v, encode]) => (encode ? `${encodeURIComponent(name)}=${encodeURIComponent(v)}` : `${name}=${v}`)).join('&');
        const req = h.http.post('/token');
        if (type !== '') req.set('Content-Type', type);
        if (extra.authorization !== undefined) req.set('Authorization', extra.authorization.replace(/[\r\n\u0000-\u001f\u007f-\uffff]/g, ''));
        if (extra.accept !== undefined) req.set('Accept', extra.accept);
        if (extra.encoding !== undefined) req.set('Content-Encoding', extra.encoding);
        if (extra.requestId !== undefined) req.set('X-Request-Id', extra.requestId.replace(/[\r\n\u0000-\u001f\u007f-\uffff]/g, ''));
        const res = await req.send(body);
        assertNoServerErrorOrLeak(res);
        assert.notEqual(res.status, 200);
      }),
      { seed: SEEDS.randomForms, numRuns: RUNS.randomForms, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: true, endOnFailure: true },
    );
    assert.equal(auditCount(h), audits);
  });
});
