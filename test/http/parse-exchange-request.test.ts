import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../src/server/errors.js';
import { parseExchangeRequest } from '../../src/server/http/parse-exchange-request.js';
import {
  GRANT_TYPE_TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_ID_TOKEN,
  TOKEN_TYPE_JWT,
} from '../../src/server/protocol.js';
import type { ExchangeRequest } from '../../src/server/exchange/exchange-request.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

/** A valid RFC 8693 form, with overrides; an override of `undefined` removes the parameter. */
function form(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
    subject_token: TOKEN,
    subject_token_type: TOKEN_TYPE_JWT,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(base).filter(([, value]) => value !== undefined));
}

const REQUEST: ExchangeRequest = { subjectToken: TOKEN, audience: undefined, scope: undefined, resource: undefined, requestedTokenType: undefined };

describe('parseExchangeRequest: accepted', () => {
  const cases: readonly { name: string; form: Record<string, unknown>; authorization?: string; expected: ExchangeRequest }[] = [
    { name: 'the minimal form', form: form(), expected: REQUEST },
    { name: 'an id_token subject token type', form: form({ subject_token_type: TOKEN_TYPE_ID_TOKEN }), expected: REQUEST },
    { name: 'an audience', form: form({ audience: 'tyk-internal' }), expected: { ...REQUEST, audience: 'tyk-internal' } },
    { name: 'one scope', form: form({ scope: 'payments-read' }), expected: { ...REQUEST, scope: ['payments-read'] } },
    {
      name: 'a scope split on spaces, extra spaces ignored',
      form: form({ scope: ' payments-read  status-read ' }),
      expected: { ...REQUEST, scope: ['payments-read', 'status-read'] },
    },
    {
      name: 'a resource, its scheme and host in lower case, its path as sent',
      form: form({ resource: 'HTTPS://Gateway.Example.COM/orders/v1' }),
      expected: { ...REQUEST, resource: { origin: 'https://gateway.example.com', path: '/orders/v1' } },
    },
    {
      name: 'a resource with the default port and no path: the origin alone, path "/"',
      form: form({ resource: 'https://gateway.example.com:443' }),
      expected: { ...REQUEST, resource: { origin: 'https://gateway.example.com', path: '/' } },
    },
    {
      name: 'a requested token type, passed through for the exchange to judge',
      form: form({ requested_token_type: TOKEN_TYPE_ACCESS_TOKEN }),
      expected: { ...REQUEST, requestedTokenType: TOKEN_TYPE_ACCESS_TOKEN },
    },
    { name: 'unknown parameters, ignored (RFC 6749 section 3.2)', form: form({ client_id: 'x', foo: ['a', 'b'] }), expected: REQUEST },
    { name: 'Authorization: Bearer with an empty form', form: {}, authorization: `Bearer ${TOKEN}`, expected: REQUEST },
    { name: 'Authorization: bearer, case-insensitive scheme', form: {}, authorization: `bearer ${TOKEN}`, expected: REQUEST },
    {
      name: 'Authorization: Bearer with the token-exchange grant type',
      form: { grant_type: GRANT_TYPE_TOKEN_EXCHANGE },
      authorization: `Bearer ${TOKEN}`,
      expected: REQUEST,
    },
    {
      name: 'Authorization: Bearer with scope and audience in the form',
      form: { scope: 'a b', audience: 'tyk-internal' },
      authorization: `Bearer ${TOKEN}`,
      expected: { ...REQUEST, scope: ['a', 'b'], audience: 'tyk-internal' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(parseExchangeRequest(c.form, c.authorization), c.expected);
    });
  }
});

describe('parseExchangeRequest: refused', () => {
  const cases: readonly { name: string; form: Record<string, unknown>; authorization?: string; error: string; reason: string }[] = [
    { name: 'missing grant_type', form: form({ grant_type: undefined }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'an empty form and no header', form: {}, error: 'invalid_request', reason: 'invalid_request' },
    {
      name: 'a wrong grant_type',
      form: form({ grant_type: 'client_credentials' }),
      error: 'unsupported_grant_type',
      reason: 'unsupported_grant_type',
    },
    {
      name: 'an empty grant_type',
      form: form({ grant_type: '' }),
      error: 'unsupported_grant_type',
      reason: 'unsupported_grant_type',
    },
    { name: 'missing subject_token', form: form({ subject_token: undefined }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'an empty subject_token', form: form({ subject_token: '' }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'missing subject_token_type', form: form({ subject_token_type: undefined }), error: 'invalid_request', reason: 'invalid_request' },
    {
      name: 'an access_token subject_token_type',
      form: form({ subject_token_type: TOKEN_TYPE_ACCESS_TOKEN }),
      error: 'invalid_request',
      reason: 'unsupported_token_type',
    },
    {
      name: 'an unknown subject_token_type',
      form: form({ subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }),
      error: 'invalid_request',
      reason: 'unsupported_token_type',
    },
    { name: 'grant_type twice', form: form({ grant_type: [GRANT_TYPE_TOKEN_EXCHANGE, GRANT_TYPE_TOKEN_EXCHANGE] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'subject_token twice', form: form({ subject_token: [TOKEN, TOKEN] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'subject_token_type twice', form: form({ subject_token_type: [TOKEN_TYPE_JWT, TOKEN_TYPE_JWT] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'audience twice', form: form({ audience: ['tyk', 'tyk-internal'] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'scope twice', form: form({ scope: ['a', 'b'] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'requested_token_type twice', form: form({ requested_token_type: [TOKEN_TYPE_JWT, TOKEN_TYPE_JWT] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'resource twice (one token serves one API)', form: form({ resource: ['https://a', 'https://b'] }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'a parameter given as a nested object', form: form({ audience: { x: 'y' } }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'an actor_token', form: form({ actor_token: TOKEN, actor_token_type: TOKEN_TYPE_JWT }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'an actor_token_type alone', form: form({ actor_token_type: TOKEN_TYPE_JWT }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'a relative resource', form: form({ resource: '/orders/' }), error: 'invalid_target', reason: 'malformed_resource' },
    { name: 'a resource with a fragment', form: form({ resource: 'https://gateway.example.com/orders/#x' }), error: 'invalid_target', reason: 'malformed_resource' },
    { name: 'a resource with userinfo', form: form({ resource: 'https://me@gateway.example.com/orders/' }), error: 'invalid_target', reason: 'malformed_resource' },
    { name: 'a resource with a query', form: form({ resource: 'https://gateway.example.com/orders/?all=1' }), error: 'invalid_target', reason: 'malformed_resource' },
    { name: 'an empty resource', form: form({ resource: '' }), error: 'invalid_target', reason: 'malformed_resource' },
    { name: 'a resource with a dot segment', form: form({ resource: 'https://gateway.example.com/orders/../admin/' }), error: 'invalid_target', reason: 'malformed_resource' },
    { name: 'a resource that is a URN', form: form({ resource: 'urn:example:orders' }), error: 'invalid_target', reason: 'unknown_resource' },
    { name: 'an empty scope', form: form({ scope: '' }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'a scope of spaces only', form: form({ scope: '   ' }), error: 'invalid_request', reason: 'invalid_request' },
    { name: 'an empty audience', form: form({ audience: '' }), error: 'invalid_request', reason: 'invalid_request' },
    {
      name: 'Authorization: Bearer with a wrong grant_type',
      form: { grant_type: 'client_credentials' },
      authorization: `Bearer ${TOKEN}`,
      error: 'unsupported_grant_type',
      reason: 'unsupported_grant_type',
    },
    {
      name: 'Authorization: Bearer with grant_type twice',
      form: { grant_type: [GRANT_TYPE_TOKEN_EXCHANGE, GRANT_TYPE_TOKEN_EXCHANGE] },
      authorization: `Bearer ${TOKEN}`,
      error: 'invalid_request',
      reason: 'invalid_request',
    },
    {
      name: 'Authorization: Bearer with an actor_token',
      form: { actor_token: TOKEN },
      authorization: `Bearer ${TOKEN}`,
      error: 'invalid_request',
      reason: 'invalid_request',
    },
    { name: 'Authorization: Basic with an empty form', form: {}, authorization: 'Basic dXNlcjpwYXNz', error: 'invalid_request', reason: 'invalid_request' },
    {
      name: 'a form subject token and an Authorization: Bearer token at once (ambiguous)',
      form: form(),
      authorization: 'Bearer other.token.value',
      error: 'invalid_request',
      reason: 'invalid_request',
    },
    { name: 'Authorization: Bearer with no token', form: {}, authorization: 'Bearer ', error: 'invalid_request', reason: 'invalid_request' },
    { name: 'Authorization: Bearer with two tokens', form: {}, authorization: `Bearer ${TOKEN} ${TOKEN}`, error: 'invalid_request', reason: 'invalid_request' },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.error} / ${c.reason}`, () => {
      assert.throws(
        () => parseExchangeRequest(c.form, c.authorization),
        (error: unknown) => {
          assert.ok(error instanceof BrokerError, String(error));
          assert.equal(error.oauthError, c.error);
          assert.equal(error.code, c.reason);
          assert.equal(error.status, 400);
          // The description is about the request, never an echo of the token.
          assert.equal(error.description.includes(TOKEN), false);
          return true;
        },
      );
    });
  }
});
