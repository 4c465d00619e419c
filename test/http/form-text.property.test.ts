import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import qs from 'qs';
import { MAX_FORM_PARAMETERS, TooManyParametersError, parseFormText } from '../../src/server/http/form-text.js';

/*
 * The token endpoint's form parser must read every body as body-parser's urlencoded parser (qs, extended: false)
 * did before it, or a body that exchanged yesterday would be refused today, or read differently. The reference is
 * qs itself, called with body-parser 2.4's options; the bodies are drawn from the characters that change a parse.
 */

function bodyParserReading(text: string): unknown {
  if (text.length === 0) return {};
  const count = text.split('&').length;
  return qs.parse(text, { allowPrototypes: true, arrayLimit: count, depth: 0, charset: 'utf-8', parameterLimit: MAX_FORM_PARAMETERS, strictDepth: true });
}

const pieces = [
  'a', 'b', 'scope', 'subject_token', '__proto__', 'constructor', 'toString', '=', '&', '+', '%', '%2', '%20', '%2B', '%3D', '%26',
  '%E2%82%AC', '%E0%A4%A', '%ZZ', '%5B', '%5d', '[', ']', '[]', 'é', '😀', '?', '.', ' ', 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln',
];
const body = fc.array(fc.constantFrom(...pieces), { maxLength: 24 }).map((parts) => parts.join(''));

describe('parseFormText reads a form as body-parser (qs) does', () => {
  it('property: the same fields as qs with body-parser\'s options, for any body of up to 32 parameters', () => {
    fc.assert(
      fc.property(body, (text) => {
        fc.pre(text.split('&').length <= MAX_FORM_PARAMETERS);
        assert.deepStrictEqual(parseFormText(text), bodyParserReading(text));
      }),
      { numRuns: 5000 },
    );
  });

  for (const [text, expected] of [
    ['grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&scope=a+b', { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', scope: 'a b' }],
    ['scope=a&scope=b&scope=c', { scope: ['a', 'b', 'c'] }],
    ['audience', { audience: '' }],
    ['=orphan&&a=1', { a: '1' }],
    ['a=%E0%A4%A', { a: '%E0%A4%A' }],
    ['__proto__=x&a=1', { a: '1' }],
    ['a[b]=1', { 'a[b]': '1' }],
  ] as const) {
    it(`${JSON.stringify(text)} -> ${JSON.stringify(expected)}`, () => {
      const fields = parseFormText(text);
      assert.deepStrictEqual(fields, expected);
      assert.equal(Object.getPrototypeOf(fields), Object.prototype, 'a __proto__ parameter never replaces the prototype');
    });
  }

  it(`more than ${MAX_FORM_PARAMETERS} parameters is refused before any is decoded; exactly ${MAX_FORM_PARAMETERS} is read`, () => {
    assert.throws(() => parseFormText(Array.from({ length: MAX_FORM_PARAMETERS + 1 }, (_, i) => `p${i}=1`).join('&')), TooManyParametersError);
    assert.equal(Object.keys(parseFormText(Array.from({ length: MAX_FORM_PARAMETERS }, (_, i) => `p${i}=1`).join('&'))).length, MAX_FORM_PARAMETERS);
  });
});
