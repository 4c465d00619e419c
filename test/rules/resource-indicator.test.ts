import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../src/server/errors.js';
import { MAX_RESOURCE_LENGTH, parseResourceIndicator } from '../../src/server/rules/resource-indicator.js';

describe('parseResourceIndicator: accepted', () => {
  const cases: readonly { text: string; origin: string; path: string }[] = [
    { text: 'https://gateway.example.com/orders/', origin: 'https://gateway.example.com', path: '/orders/' },
    { text: 'https://gateway.example.com/orders', origin: 'https://gateway.example.com', path: '/orders' },
    { text: 'https://gateway.example.com', origin: 'https://gateway.example.com', path: '/' },
    { text: 'HTTPS://GATEWAY.EXAMPLE.COM/orders/v1', origin: 'https://gateway.example.com', path: '/orders/v1' },
    { text: 'https://gateway.example.com:443/orders/', origin: 'https://gateway.example.com', path: '/orders/' },
    { text: 'https://gateway.example.com:8443/orders/', origin: 'https://gateway.example.com:8443', path: '/orders/' },
    { text: 'http://tyk-gateway.tyk.svc:8080/orders/', origin: 'http://tyk-gateway.tyk.svc:8080', path: '/orders/' },
    // Paths are case-sensitive, as Tyk's listen paths are: kept as sent.
    { text: 'https://gateway.example.com/ORDERS/', origin: 'https://gateway.example.com', path: '/ORDERS/' },
  ];
  for (const c of cases) {
    it(c.text, () => {
      assert.deepEqual(parseResourceIndicator(c.text), { origin: c.origin, path: c.path });
    });
  }
});

describe('parseResourceIndicator: refused with invalid_target', () => {
  const cases: readonly { name: string; text: string; reason: string; description: string }[] = [
    { name: 'empty', text: '', reason: 'malformed_resource', description: 'The "resource" parameter is empty.' },
    { name: 'relative', text: '/orders/', reason: 'malformed_resource', description: 'The "resource" parameter must be an absolute URI, such as https://gateway.example.com/orders/.' },
    { name: 'scheme-relative', text: '//gateway.example.com/orders/', reason: 'malformed_resource', description: 'The "resource" parameter must be an absolute URI, such as https://gateway.example.com/orders/.' },
    { name: 'a fragment', text: 'https://gateway.example.com/orders/#admin', reason: 'malformed_resource', description: 'The "resource" parameter must not have a fragment (RFC 8707).' },
    { name: 'an empty fragment', text: 'https://gateway.example.com/orders/#', reason: 'malformed_resource', description: 'The "resource" parameter must not have a fragment (RFC 8707).' },
    { name: 'a user name', text: 'https://gateway.example.com@evil.example/orders/', reason: 'malformed_resource', description: 'The "resource" parameter must not carry a user name or password.' },
    { name: 'a password', text: 'https://u:p@gateway.example.com/orders/', reason: 'malformed_resource', description: 'The "resource" parameter must not carry a user name or password.' },
    { name: 'a query', text: 'https://gateway.example.com/orders/?id=1', reason: 'malformed_resource', description: 'The "resource" parameter must not have a query: a token is narrowed to an API by its path alone.' },
    { name: 'a dot-dot segment', text: 'https://gateway.example.com/orders/../admin/', reason: 'malformed_resource', description: 'The "resource" parameter must be in normal form: no "." or ".." segments and no percent-encoded ".", "/" or "\\".' },
    { name: 'a dot segment', text: 'https://gateway.example.com/./orders/', reason: 'malformed_resource', description: 'The "resource" parameter must be in normal form: no "." or ".." segments and no percent-encoded ".", "/" or "\\".' },
    { name: 'percent-encoded dots', text: 'https://gateway.example.com/orders/%2e%2e/admin', reason: 'malformed_resource', description: 'The "resource" parameter must be in normal form: no "." or ".." segments and no percent-encoded ".", "/" or "\\".' },
    { name: 'a percent-encoded slash', text: 'https://gateway.example.com/orders%2Fadmin/', reason: 'malformed_resource', description: 'The "resource" parameter must be in normal form: no "." or ".." segments and no percent-encoded ".", "/" or "\\".' },
    { name: 'a backslash', text: 'https://gateway.example.com/orders\\..\\admin', reason: 'malformed_resource', description: 'The "resource" parameter contains spaces, control characters or backslashes.' },
    { name: 'a tab', text: 'https://gateway.example.com/or\tders/', reason: 'malformed_resource', description: 'The "resource" parameter contains spaces, control characters or backslashes.' },
    { name: 'non-ASCII unencoded', text: 'https://gateway.example.com/bestellungen/ü', reason: 'malformed_resource', description: 'The "resource" parameter must be in normal form: percent-encode non-ASCII characters as RFC 3986 says.' },
    { name: 'a full-width host', text: 'https://ｇateway.example.com/orders/', reason: 'malformed_resource', description: 'The "resource" parameter must write its host in ASCII, without percent-encoding (IDNA hosts as punycode).' },
    { name: 'a percent-encoded host', text: 'https://gateway%2eexample.com/orders/', reason: 'malformed_resource', description: 'The "resource" parameter must write its host in ASCII, without percent-encoding (IDNA hosts as punycode).' },
    { name: 'too long', text: `https://gateway.example.com/${'a'.repeat(MAX_RESOURCE_LENGTH)}`, reason: 'malformed_resource', description: `The "resource" parameter is longer than ${MAX_RESOURCE_LENGTH} characters.` },
    { name: 'a URN', text: 'urn:example:orders', reason: 'unknown_resource', description: 'The "resource" parameter names no API this broker issues tokens for: only http and https URLs of the gateway are served.' },
    { name: 'another scheme', text: 'ftp://gateway.example.com/orders/', reason: 'unknown_resource', description: 'The "resource" parameter names no API this broker issues tokens for: only http and https URLs of the gateway are served.' },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.reason}`, () => {
      assert.throws(
        () => parseResourceIndicator(c.text),
        (error: unknown) => {
          assert.ok(error instanceof BrokerError);
          assert.deepEqual([error.oauthError, error.status, error.code, error.description], ['invalid_target', 400, c.reason, c.description]);
          return true;
        },
      );
    });
  }
});
