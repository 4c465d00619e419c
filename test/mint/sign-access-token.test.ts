import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, pbkdf2 } from 'node:crypto';
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { prepareSigner, signAccessToken } from '../../src/server/mint/sign-access-token.js';
import { generateSigningKey, signingKeyFromPem, type SigningKey } from '../../src/server/mint/signing-key.js';
import { SIGNING_ALGORITHMS } from '../../src/server/protocol.js';

/*
 * Minted tokens are signed with a header encoded once per key and node:crypto, not jose's SignJWT per token. The
 * tokens must be exactly what jose produces (same header and payload bytes; for deterministic RS256 the same
 * token) and verify with jose against the published JWK, for every algorithm the broker signs with.
 */

const CLAIMS = {
  iss: 'https://token-broker.test',
  sub: 'system:serviceaccount:payments:argo-runner',
  aud: 'tyk',
  iat: 1_767_225_600,
  nbf: 1_767_225_600,
  exp: 1_767_226_200,
  jti: '0d8b260e-0000-4000-8000-000000000001',
  pol: 'payments-read',
  scope: 'payments-read payments-write',
  workload: { issuer: 'test-cluster', namespace: 'payments', serviceAccount: 'argo-runner', pod: 'p-1' },
};

function joseSign(key: SigningKey): Promise<string> {
  return new SignJWT(CLAIMS).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
}

describe('prepareSigner', () => {
  for (const alg of SIGNING_ALGORITHMS) {
    it(`${alg}: the header and payload jose would write, a signature jose verifies against the published JWK`, async () => {
      const key = await generateSigningKey(alg, Date.now());
      const signer = prepareSigner(key);
      const token = await signer.sign(CLAIMS);
      const reference = await joseSign(key);
      const [header, payload] = token.split('.');
      const [refHeader, refPayload] = reference.split('.');
      assert.equal(header, refHeader);
      assert.equal(payload, refPayload);
      assert.deepEqual(decodeProtectedHeader(token), { alg, kid: key.kid, typ: 'JWT' });
      const verified = await jwtVerify(token, createLocalJWKSet({ keys: [{ ...key.publicJwk }] }), {
        algorithms: [alg],
        currentDate: new Date(CLAIMS.iat * 1000),
      });
      assert.deepEqual(verified.payload, CLAIMS);
      // Each token is signed afresh: a second one verifies too.
      await jwtVerify(await signer.sign({ ...CLAIMS, jti: 'other' }), createLocalJWKSet({ keys: [{ ...key.publicJwk }] }), {
        algorithms: [alg],
        currentDate: new Date(CLAIMS.iat * 1000),
      });
    });
  }

  it('RS256 (deterministic): the very token jose signs', async () => {
    const key = await generateSigningKey('RS256', Date.now());
    assert.equal(await prepareSigner(key).sign(CLAIMS), await joseSign(key));
  });

  it('a key read from a PEM file (a CryptoKey) signs the same way', async () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const key = await signingKeyFromPem(pem, 'ES256', 'test.pem', Date.now());
    const token = await signAccessToken(CLAIMS, key);
    await jwtVerify(token, createLocalJWKSet({ keys: [{ ...key.publicJwk }] }), { algorithms: ['ES256'], currentDate: new Date(CLAIMS.iat * 1000) });
  });

  it('refuses a key that does not fit its algorithm', async () => {
    const ec = await generateSigningKey('ES256', Date.now());
    assert.throws(() => prepareSigner({ ...ec, alg: 'RS256' }), /cannot sign RS256/);
    assert.throws(() => prepareSigner({ ...ec, alg: 'ES384' }), /cannot sign ES384/);
    const rsa = await generateSigningKey('RS256', Date.now());
    assert.throws(() => prepareSigner({ ...rsa, alg: 'ES256' }), /cannot sign ES256/);
  });

  /*
   * Where a signature is made (issue 18): an ECDSA signature (~30 us) on the event loop, since the thread pool's
   * hand-off cost more than the signature; an RSA one (~1 ms) on the pool, so the loop does not wait for it. Seen by
   * order: with every pool thread held by a long job, an ECDSA token is ready before any job ends, an RSA one after.
   */
  async function orderBehindBusyPool(alg: 'ES256' | 'RS256'): Promise<string[]> {
    const signer = prepareSigner(await generateSigningKey(alg, Date.now()));
    const order: string[] = [];
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const jobs = Array.from({ length: poolSize }, () =>
      new Promise<void>((resolve, reject) => {
        pbkdf2('pool', 'busy', 400_000, 32, 'sha256', (error) => {
          order.push('pool job');
          if (error === null) resolve();
          else reject(error);
        });
      }),
    );
    const token = signer.sign(CLAIMS).then((signed) => {
      order.push('token');
      return signed;
    });
    await Promise.all([...jobs, token]);
    return order;
  }

  it('ES256 signs on the event loop: the token does not wait behind a busy thread pool', async () => {
    assert.equal((await orderBehindBusyPool('ES256'))[0], 'token');
  });

  it('RS256 signs on the thread pool: the token comes after a job that held the pool', async () => {
    assert.notEqual((await orderBehindBusyPool('RS256'))[0], 'token');
  });
});
