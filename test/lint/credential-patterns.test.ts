import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkNamedValue,
  findCredentialLiterals,
  isLiteralSecretValue,
  isTykKeyShaped,
  namesCredential,
} from '../../src/tools/lint/credential-patterns.js';
import { FIXTURE_JWT, GATEWAY_SECRET, OPAQUE_TOKEN, TYK_KEY, TYK_KEY_BASE64 } from './lint-fixtures.js';

/** Each match as [rule, the matched text]. */
function found(text: string): [string, string][] {
  return findCredentialLiterals(text).map((match) => [match.ruleId, text.slice(match.index, match.index + match.length)]);
}

describe('credential literals in free text', () => {
  const cases: [string, string, [string, string][]][] = [
    ['a JWT in an Authorization header (JWT wins over bearer)', `curl -H "Authorization: Bearer ${FIXTURE_JWT}" https://gw/`, [['literal-jwt', FIXTURE_JWT]]],
    ['a JWT anywhere', `token=${FIXTURE_JWT}&x=1`, [['literal-jwt', FIXTURE_JWT]]],
    ['an unsigned JWT (empty signature)', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', [['literal-jwt', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.']]],
    ['an opaque bearer token', `-H 'Authorization: Bearer ${OPAQUE_TOKEN}'`, [['literal-bearer-token', OPAQUE_TOKEN]]],
    ['a bearer token in a Python dict', `headers={"Authorization": "Bearer ${OPAQUE_TOKEN}"}`, [['literal-bearer-token', OPAQUE_TOKEN]]],
    ['curl --oauth2-bearer', `curl --oauth2-bearer ${OPAQUE_TOKEN} https://gw/`, [['literal-bearer-token', OPAQUE_TOKEN]]],
    ['a Tyk key as a bare Authorization header', `-H "Authorization: ${TYK_KEY}"`, [['literal-tyk-key', TYK_KEY]]],
    ['a Tyk key in base64 JSON form', `-H "Authorization: ${TYK_KEY_BASE64}"`, [['literal-tyk-key', TYK_KEY_BASE64]]],
    ['a Gateway secret', `-H 'x-tyk-authorization: ${GATEWAY_SECRET}'`, [['literal-tyk-key', GATEWAY_SECRET]]],
    ['a key in a shell variable named like a key', `export TYK_API_KEY="${TYK_KEY}"`, [['literal-tyk-key', TYK_KEY]]],
    ['a key in a JSON body field', `{"api_key": "${TYK_KEY}"}`, [['literal-tyk-key', TYK_KEY]]],
    ['a key after a flag', `client --api-key ${TYK_KEY}`, [['literal-tyk-key', TYK_KEY]]],
    ['two credentials', `A: ${FIXTURE_JWT} B: x-tyk-authorization: ${GATEWAY_SECRET}`, [['literal-jwt', FIXTURE_JWT], ['literal-tyk-key', GATEWAY_SECRET]]],
    // Never: references, placeholders, expressions, short words, data that merely looks long.
    ['a variable', 'curl -H "Authorization: Bearer $API_TOKEN"', []],
    ['a command substitution', 'curl -H "Authorization: Bearer $(cat /var/run/secrets/token-broker/token)"', []],
    ['an Argo expression', 'Authorization: Bearer {{inputs.parameters.token}}', []],
    ['a placeholder', 'Authorization: Bearer <token>', []],
    ['a short word', 'Authorization: Bearer changeme', []],
    ['letters only', 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz', []],
    ['a key-shaped value in a variable not named like a key', `COMMIT_SHA=${TYK_KEY}`, []],
    ['a cache key is data', `CACHE_KEY=orders-v2-${'a1'.repeat(12)}x`, []],
    ['a digest', 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', []],
    ['a dotted version', 'image: registry.example.com/tools/curl:8.10.1', []],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(found(text), expected));
  }
});

describe('names and values', () => {
  it('namesCredential reads the last word of the name', () => {
    const yes = ['TYK_API_KEY', 'GATEWAY_TOKEN', 'DB_PASSWORD', 'clientSecret', 'x-api-key', 'X-Tyk-Authorization', 'access_key', 'privateKey', 'pass'];
    const no = ['TOKEN_FILE', 'TOKEN_AUDIENCE', 'API_KEY_HEADER', 'PASSWORD_MIN_LENGTH', 'CACHE_KEY', 'S3_KEY', 'bypass', 'keyring'];
    assert.deepEqual(yes.filter((name) => !namesCredential(name, 'x')), []);
    assert.deepEqual(no.filter((name) => namesCredential(name, 'x')), []);
    // A bare "...KEY" names a credential when its value is key-shaped.
    assert.equal(namesCredential('PARTNER_KEY', TYK_KEY), true);
    assert.equal(namesCredential('PARTNER_KEY', 'partner-a'), false);
    // "auth" (or a credential word anywhere) with a key-shaped value: 32 hex digits under GATEWAY_AUTH is a key.
    assert.equal(namesCredential('GATEWAY_AUTH', GATEWAY_SECRET), true);
    assert.equal(namesCredential('AUTH_HEADER_VALUE', GATEWAY_SECRET), true);
    assert.equal(namesCredential('GATEWAY_AUTH', 'oidc'), false);
    assert.equal(namesCredential('REVISION', GATEWAY_SECRET), false);
  });

  it('a 32-hex-digit value in a secret-named variable is found, as an env entry and in script text', () => {
    const hex = 'eb7c0a3f9d2e4b1c8a6f5e4d3c2b1a09';
    assert.deepEqual(checkNamedValue('GATEWAY_AUTH', hex, '='), [
      { ruleId: 'literal-tyk-key', index: 0, length: 32, context: '"GATEWAY_AUTH"', byName: true },
    ]);
    assert.deepEqual(found(`GATEWAY_AUTH: "${hex}"`), [['literal-tyk-key', hex]]);
    assert.deepEqual(found(`export GATEWAY_AUTH=${hex}`), [['literal-tyk-key', hex]]);
  });

  it('isLiteralSecretValue skips references, settings, paths and placeholders', () => {
    const literal = ['hunter2', 'c1d8-rotate-me', 'https://user:pass@db.example.com/'];
    const notLiteral = ['', '  ', '{{inputs.parameters.token}}', '$(TOKEN)', '${TOKEN}', '$TOKEN', 'true', 'No', '600', '/var/run/secrets/token', 'https://gateway.example.com/x', '<your-token>'];
    assert.deepEqual(literal.filter((value) => !isLiteralSecretValue(value)), []);
    assert.deepEqual(notLiteral.filter((value) => isLiteralSecretValue(value)), []);
  });

  it('isTykKeyShaped wants 24-64 alphanumerics mixing letters and digits, or the base64 JSON form', () => {
    assert.equal(isTykKeyShaped(TYK_KEY), true);
    assert.equal(isTykKeyShaped(GATEWAY_SECRET), true);
    assert.equal(isTykKeyShaped(TYK_KEY_BASE64), true);
    assert.equal(isTykKeyShaped('a1'.repeat(11)), false); // 22 characters
    assert.equal(isTykKeyShaped('a1'.repeat(33)), false); // 66 characters
    assert.equal(isTykKeyShaped('abcdefghijklmnopqrstuvwxyz'), false);
    assert.equal(isTykKeyShaped('1234567890123456789012345'), false);
  });

  it('checkNamedValue reports a key-shaped value by its name, a credential-named literal, and nothing for references', () => {
    assert.deepEqual(checkNamedValue('TYK_API_KEY', TYK_KEY, '='), [
      { ruleId: 'literal-tyk-key', index: 0, length: TYK_KEY.length, context: '"TYK_API_KEY"', byName: true },
    ]);
    assert.deepEqual(checkNamedValue('Authorization', `Bearer ${OPAQUE_TOKEN}`, ': '), [
      { ruleId: 'literal-bearer-token', index: 7, length: OPAQUE_TOKEN.length, context: 'an Authorization: Bearer header', byName: false },
    ]);
    assert.deepEqual(checkNamedValue('DB_PASSWORD', 'hunter2-staging', '='), [
      { ruleId: 'secret-named-literal', index: 0, length: 15, context: '"DB_PASSWORD"', byName: true },
    ]);
    assert.deepEqual(checkNamedValue('API_TOKEN', '{{inputs.parameters.api-token}}', '='), []);
    assert.deepEqual(checkNamedValue('REGION', 'eu-west-1', '='), []);
  });
});
