import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { CompactSign, compactVerify, exportJWK, importJWK, type CryptoKey } from 'jose';
import { jwsSignatureValid } from '../../src/server/issuers/jws-signature.js';

/*
 * The subject token's signature is checked with node:crypto rather than jose's WebCrypto path (4x less CPU). jose
 * is the reference here: tokens are signed with jose, and on every mutation the property test tries, the broker's
 * check must agree with jose's compactVerify.
 */

type Algorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';
const ALGORITHMS: readonly Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const rsa2048 = (): KeyPair => generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = (namedCurve: string): KeyPair => generateKeyPairSync('ec', { namedCurve });

/** The public key as the issuer key set hands it out: a JWK imported with jose for one algorithm. */
async function issuerKey(pair: KeyPair, alg: string): Promise<CryptoKey> {
  return (await importJWK({ ...(await exportJWK(pair.publicKey)), ext: true }, alg)) as CryptoKey;
}

async function signed(pair: KeyPair, alg: string, payload = '{"iss":"https://issuer.test","sub":"x"}'): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg, kid: 'k1' }).sign(pair.privateKey);
}

function parts(token: string): { input: string; signature: Buffer } {
  const [header = '', payload = '', signature = ''] = token.split('.');
  return { input: `${header}.${payload}`, signature: Buffer.from(signature, 'base64url') };
}

describe('jwsSignatureValid', () => {
  const pairs = new Map<Algorithm, KeyPair>();
  before(() => {
    const rsa = rsa2048();
    for (const alg of ALGORITHMS) {
      pairs.set(alg, alg.startsWith('ES') ? ec({ ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }[alg as 'ES256']) : rsa);
    }
  });
  const pair = (alg: Algorithm): KeyPair => pairs.get(alg) as KeyPair;

  for (const alg of ALGORITHMS) {
    it(`${alg}: a jose-signed token verifies; a changed payload or signature does not`, async () => {
      const key = await issuerKey(pair(alg), alg);
      const { input, signature } = parts(await signed(pair(alg), alg));
      assert.equal(jwsSignatureValid(alg, input, signature, key), true);
      const [header] = input.split('.');
      const otherPayload = Buffer.from('{"iss":"https://issuer.test","sub":"y"}').toString('base64url');
      assert.equal(jwsSignatureValid(alg, `${header}.${otherPayload}`, signature, key), false);
      const flipped = Buffer.from(signature);
      flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
      assert.equal(jwsSignatureValid(alg, input, flipped, key), false);
      assert.equal(jwsSignatureValid(alg, input, signature.subarray(0, signature.length - 1), key), false, 'truncated');
      assert.equal(jwsSignatureValid(alg, input, Buffer.alloc(0), key), false, 'empty');
    });
  }

  it('a key is never used for an algorithm of another family, hash or curve', async () => {
    const rsaToken = parts(await signed(pair('RS256'), 'RS256'));
    const ecToken = parts(await signed(pair('ES256'), 'ES256'));
    // An EC key cannot verify RS256, an RSA key cannot verify ES256.
    assert.equal(jwsSignatureValid('RS256', rsaToken.input, rsaToken.signature, await issuerKey(pair('ES256'), 'ES256')), false);
    assert.equal(jwsSignatureValid('ES256', ecToken.input, ecToken.signature, await issuerKey(pair('RS256'), 'RS256')), false);
    // A P-384 key for ES256, and an RS256 signature presented as PS256 or RS384.
    assert.equal(jwsSignatureValid('ES256', ecToken.input, ecToken.signature, await issuerKey(pair('ES384'), 'ES384')), false);
    assert.equal(jwsSignatureValid('PS256', rsaToken.input, rsaToken.signature, await issuerKey(pair('RS256'), 'RS256')), false);
    assert.equal(jwsSignatureValid('RS384', rsaToken.input, rsaToken.signature, await issuerKey(pair('RS256'), 'RS256')), false);
    // Algorithms outside the accepted set, whatever the key.
    for (const alg of ['HS256', 'none', 'EdDSA', 'RS1', '']) {
      assert.equal(jwsSignatureValid(alg, rsaToken.input, rsaToken.signature, await issuerKey(pair('RS256'), 'RS256')), false, alg);
    }
  });

  it('an RSA key under 2048 bits never verifies, even a signature it made', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const input = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}`;
    // jose refuses to sign with such a key; node:crypto makes a signature that is mathematically right.
    const signature = sign('sha256', Buffer.from(input), weak.privateKey);
    const key = (await globalThis.crypto.subtle.importKey('jwk', { ...(await exportJWK(weak.publicKey)), ext: true }, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify'])) as CryptoKey;
    assert.equal(jwsSignatureValid('RS256', input, signature, key), false);
  });

  it('a symmetric secret is never a verification key', () => {
    assert.equal(jwsSignatureValid('RS256', 'a.b', Buffer.from('sig'), new TextEncoder().encode('secret')), false);
  });

  it('agrees with jose compactVerify on random corruptions of valid tokens, every algorithm', async () => {
    const keys = new Map<Algorithm, CryptoKey>();
    const tokens = new Map<Algorithm, string>();
    for (const alg of ALGORITHMS) {
      keys.set(alg, await issuerKey(pair(alg), alg));
      tokens.set(alg, await signed(pair(alg), alg));
    }
    let valid = 0;
    let invalid = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ALGORITHMS),
        // Half the time the token is presented as what it is, half the time as some other algorithm.
        fc.option(fc.constantFrom(...ALGORITHMS), { nil: undefined, freq: 2 }),
        fc.option(fc.record({ segment: fc.integer({ min: 0, max: 2 }), position: fc.nat(), bit: fc.integer({ min: 0, max: 5 }) }), { nil: undefined, freq: 2 }),
        async (signedWith, otherAlgorithm, corruption) => {
          const presentedAs = otherAlgorithm ?? signedWith;
          let token = tokens.get(signedWith) as string;
          if (corruption !== undefined) {
            const segments = token.split('.');
            const segment = Buffer.from(segments[corruption.segment] as string, 'base64url');
            if (segment.length > 0) {
              const at = corruption.position % segment.length;
              segment[at] = (segment[at] ?? 0) ^ (1 << corruption.bit);
            }
            segments[corruption.segment] = segment.toString('base64url');
            token = segments.join('.');
          }
          const key = keys.get(presentedAs) as CryptoKey;
          const jose = await compactVerify(token, key, { algorithms: [presentedAs] }).then(
            () => true,
            () => false,
          );
          const { input, signature } = parts(token);
          // The broker's check runs after its header checks: the alg it is given is the header's, which jose reads itself.
          let headerAlg: unknown;
          try {
            headerAlg = (JSON.parse(Buffer.from(input.split('.')[0] as string, 'base64url').toString('utf8')) as { alg?: unknown } | null)?.alg;
          } catch {
            headerAlg = undefined; // a header that is not JSON: refused as malformed before any signature check
          }
          const broker = headerAlg === presentedAs && jwsSignatureValid(presentedAs, input, signature, key);
          assert.equal(broker, jose, `${signedWith} presented as ${presentedAs}, ${JSON.stringify(corruption)}`);
          if (jose) valid++;
          else invalid++;
        },
      ),
      { numRuns: 400 },
    );
    assert.ok(valid > 20 && invalid > 100, `valid ${valid}, invalid ${invalid}`);
  });
});
