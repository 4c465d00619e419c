import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK } from 'jose';
import { describeFinding, findLeaks } from './log-leak-patterns.js';

// The detectors of the whole-suite log-leak check (log-leaks.final.ts). They run in the main suite so a
// detector that stopped detecting, or started flagging digests, fails here before the final check relies on it.

async function signedJwt(): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return new SignJWT({ sub: 'system:serviceaccount:payments:argo-runner', pol: 'payments-read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
    .setIssuer('https://token-broker.test')
    .setExpirationTime('10m')
    .sign(privateKey);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

describe('log leak detectors', () => {
  it('find a signed JWT wherever a log line could carry it', async () => {
    const jwt = await signedJwt();
    const lines = [
      jwt,
      JSON.stringify({ level: 30, msg: 'exchange succeeded', token: jwt }),
      `POST /token?subject_token=${jwt}&x=1`,
      `Authorization: Bearer ${jwt}`,
      `token-broker.payments.svc.${jwt}`,
      `"${jwt}"`,
    ];
    for (const line of lines) {
      const findings = findLeaks(line);
      assert.deepEqual(
        findings.map((f) => ({ kind: f.kind, text: line.slice(f.index, f.index + f.length) })),
        [{ kind: 'jwt', text: jwt }],
        line.slice(0, 40),
      );
    }
  });

  it('find unsigned tokens, headers that are JSON but not eyJ-prefixed, JWE parts and two tokens glued by a dot', async () => {
    const unsigned = `${b64url({ alg: 'none' })}.${b64url({ sub: 'x' })}.`;
    assert.deepEqual(findLeaks(`t=${unsigned} end`).map((f) => f.kind), ['jwt']);

    const spacedHeader = `${Buffer.from(' { "alg": "RS256" }').toString('base64url')}.${b64url({ sub: 'x' })}.c2ln`;
    assert.equal(spacedHeader.startsWith('eyJ'), false, 'the header must exercise the decode path');
    assert.deepEqual(findLeaks(spacedHeader).map((f) => f.kind), ['jwt']);

    const jwe = `${b64url({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.${randomBytes(32).toString('base64url')}.${randomBytes(12).toString('base64url')}.abc.def`;
    assert.deepEqual(findLeaks(jwe).map((f) => f.kind), ['jwt']);

    const jwt = await signedJwt();
    assert.deepEqual(findLeaks(`${jwt}.${jwt}`).map((f) => [f.kind, f.index, f.length]), [
      ['jwt', 0, jwt.length],
      ['jwt', jwt.length + 1, jwt.length],
    ]);
  });

  it('a W3C trace id as the traceId or trace_id field is not a Tyk key; a key under another name beside it still is', () => {
    const traceId = randomBytes(16).toString('hex');
    const key = randomBytes(16).toString('hex');
    assert.deepEqual(findLeaks(JSON.stringify({ msg: 'token exchange', traceId })), []);
    assert.deepEqual(findLeaks(JSON.stringify({ receipt: true, trace_id: traceId })), []);
    const line = JSON.stringify({ traceId, key, trace: traceId });
    assert.deepEqual(
      findLeaks(line).map((f) => line.slice(f.index, f.index + f.length)),
      [key, traceId],
      'only the traceId field itself is exempt',
    );
  });

  it('find Tyk keys: org id + 32 hex, a bare 32-hex key, and the base64 JSON key of newer Gateways', () => {
    const hex = randomBytes(16).toString('hex');
    const cases = [
      `default${hex}`,
      `5e9d9544a1dcd60001d0ed20${hex}`,
      hex,
      Buffer.from(JSON.stringify({ org: 'default', id: hex, h: 'murmur64' })).toString('base64'),
    ];
    for (const key of cases) {
      for (const line of [key, `GET /tyk/keys/${key} 200`, JSON.stringify({ msg: 'key created', key })]) {
        const findings = findLeaks(line);
        assert.deepEqual(
          findings.map((f) => ({ kind: f.kind, text: line.slice(f.index, f.index + f.length) })),
          [{ kind: 'tyk-key', text: key }],
          line,
        );
      }
    }
  });

  it('leave alone what broker logs legitimately carry: SHA-256 digests, kids, UUIDs, URLs, versions', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
    const clean = [
      kid,
      `kid ${kid}`,
      'https://token-broker.test/.well-known/jwks.json',
      'http://127.0.0.1:41234/.well-known/openid-configuration',
      'node v20.20.2 on linux 6.1.0.27',
      'system:serviceaccount:payments:argo-runner',
      'tb:tok:v1:test-cluster:payments:argo-runner',
      'eyJ',
      '...',
    ];
    // Bounded: enough random digests and ids that a pattern matching their alphabet would show.
    for (let i = 0; i < 300; i++) {
      const digest = sha256(randomUUID());
      clean.push(digest, `${digest}.${sha256(digest)}`, randomUUID(), `sha256=${digest} kid=${kid}`);
    }
    clean.push(
      JSON.stringify({
        level: 30,
        audit: true,
        event: 'token_issued',
        requestId: randomUUID(),
        jti: randomUUID(),
        policies: ['payments-read'],
        accessTokenSha256: sha256('a'),
        subjectTokenSha256: sha256('b'),
        msg: 'token issued',
      }),
    );
    for (const line of clean) assert.deepEqual(findLeaks(line), [], line);
  });

  it('describe a finding without repeating the credential', async () => {
    const jwt = await signedJwt();
    const line = `x ${jwt}`;
    const [finding] = findLeaks(line);
    assert.ok(finding !== undefined);
    const text = describeFinding(line, finding);
    assert.equal(text, `jwt at column 3, ${jwt.length} chars, starting "${jwt.slice(0, 6)}…"`);
    assert.equal(text.includes(jwt.split('.')[1] ?? ''), false);
  });
});
