import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { useHarness } from '../support/broker-harness.js';
import { GATEWAY, resourceConfig } from '../support/resource-config.js';
import { expectMinted, expectRefusal } from './refusal.js';
import type { ReasonCode } from '../../src/server/errors.js';

/*
 * RFC 8707 `resource` values crafted to name an API the workload is not granted (payments-admin, opened only by
 * the ungranted payments-admin policy) or to make the broker and the gateway disagree on which API a URL is:
 * path-prefix confusion, host confusion, dot segments (plain and percent-encoded), case tricks, userinfo. Each is
 * refused exactly, with nothing minted; the few that honestly name a granted API get only that API's policies.
 */

const NOT_GRANTED = 'This workload is granted no policy that opens the API the "resource" parameter names.';
const UNKNOWN = 'The "resource" parameter names no API this broker issues tokens for.';
const NORMAL_FORM = 'The "resource" parameter must be in normal form: no "." or ".." segments and no percent-encoded ".", "/" or "\\".';
const USERINFO = 'The "resource" parameter must not carry a user name or password.';
const ASCII_HOST = 'The "resource" parameter must write its host in ASCII, without percent-encoding (IDNA hosts as punycode).';

const attacks: readonly { name: string; resource: string; reason: ReasonCode; description: string }[] = [
  // path-prefix confusion: /payments/ is granted, /payments-admin/ is not
  { name: 'the ungranted API itself', resource: `${GATEWAY}/payments-admin/`, reason: 'resource_not_granted', description: NOT_GRANTED },
  { name: 'the ungranted API without its final slash', resource: `${GATEWAY}/payments-admin`, reason: 'resource_not_granted', description: NOT_GRANTED },
  { name: 'a string prefix that is not a segment prefix', resource: `${GATEWAY}/paymentsx/`, reason: 'unknown_resource', description: UNKNOWN },
  { name: 'the listen path shortened', resource: `${GATEWAY}/payment`, reason: 'unknown_resource', description: UNKNOWN },
  // host confusion
  { name: 'the gateway host as a subdomain of another', resource: 'https://gateway.example.com.evil.example/payments/', reason: 'unknown_resource', description: UNKNOWN },
  { name: 'the gateway host as a suffix', resource: 'https://evilgateway.example.com/payments/', reason: 'unknown_resource', description: UNKNOWN },
  { name: 'a trailing dot on the host', resource: 'https://gateway.example.com./payments/', reason: 'unknown_resource', description: UNKNOWN },
  { name: 'plain http for an https gateway', resource: 'http://gateway.example.com/payments/', reason: 'unknown_resource', description: UNKNOWN },
  { name: 'another port', resource: 'https://gateway.example.com:8443/payments/', reason: 'unknown_resource', description: UNKNOWN },
  { name: 'the gateway host as userinfo', resource: 'https://gateway.example.com@evil.example/payments/', reason: 'malformed_resource', description: USERINFO },
  { name: 'userinfo before the gateway host', resource: 'https://evil.example@gateway.example.com/payments/', reason: 'malformed_resource', description: USERINFO },
  { name: 'a percent-encoded dot in the host', resource: 'https://gateway%2Eexample.com/payments/', reason: 'malformed_resource', description: ASCII_HOST },
  { name: 'a full-width letter in the host', resource: 'https://ｇateway.example.com/payments/', reason: 'malformed_resource', description: ASCII_HOST },
  // dot segments, which a URL parser would resolve into the ungranted API
  { name: 'a dot-dot segment out of a granted API', resource: `${GATEWAY}/payments/../payments-admin/`, reason: 'malformed_resource', description: NORMAL_FORM },
  { name: 'percent-encoded dot-dot', resource: `${GATEWAY}/payments/%2e%2e/payments-admin/`, reason: 'malformed_resource', description: NORMAL_FORM },
  { name: 'upper-case percent-encoded dot-dot', resource: `${GATEWAY}/payments/%2E%2E/payments-admin/`, reason: 'malformed_resource', description: NORMAL_FORM },
  { name: 'a half-encoded dot-dot', resource: `${GATEWAY}/payments/.%2e/payments-admin/`, reason: 'malformed_resource', description: NORMAL_FORM },
  { name: 'an encoded slash', resource: `${GATEWAY}/payments%2f..%2fpayments-admin/`, reason: 'malformed_resource', description: NORMAL_FORM },
  {
    name: 'a backslash',
    resource: `${GATEWAY}/payments\\..\\payments-admin/`,
    reason: 'malformed_resource',
    description: 'The "resource" parameter contains spaces, control characters or backslashes.',
  },
  // case tricks: scheme and host compare case-insensitively, paths do not
  { name: 'the ungranted API in upper-case scheme and host', resource: 'HTTPS://GATEWAY.EXAMPLE.COM/payments-admin/', reason: 'resource_not_granted', description: NOT_GRANTED },
  { name: 'a granted listen path in upper case', resource: `${GATEWAY}/PAYMENTS/`, reason: 'unknown_resource', description: UNKNOWN },
  // a fragment or query smuggling the ungranted path
  { name: 'a fragment naming the ungranted API', resource: `${GATEWAY}/payments/#/payments-admin/`, reason: 'malformed_resource', description: 'The "resource" parameter must not have a fragment (RFC 8707).' },
  {
    name: 'a query naming the ungranted API',
    resource: `${GATEWAY}/payments/?path=/payments-admin/`,
    reason: 'malformed_resource',
    description: 'The "resource" parameter must not have a query: a token is narrowed to an API by its path alone.',
  },
];

describe('security: resource indicators that try to widen the grant', () => {
  const h = useHarness({ config: resourceConfig, warmUp: true });

  for (const attack of attacks) {
    it(`${attack.name} -> invalid_target ${attack.reason}, nothing minted`, async () => {
      const subject = await h.issuer.projectedToken();
      await expectRefusal(h, () => h.exchange(subject, { resource: attack.resource }), {
        status: 400,
        error: 'invalid_target',
        reason: attack.reason,
        description: attack.description,
      });
    });
  }

  it('a subject token sent as the resource is never echoed', async () => {
    const subject = await h.issuer.projectedToken();
    const res = await expectRefusal(h, () => h.exchange(subject, { resource: subject }), {
      status: 400,
      error: 'invalid_target',
      reason: 'malformed_resource',
      description: 'The "resource" parameter must be an absolute URI, such as https://gateway.example.com/orders/.',
    });
    assert.equal(res.text.includes(subject), false);
    assert.equal(h.logs.raw.some((line) => line.includes(subject)), false);
  });

  it('what does name a granted API gets that API\'s policies only, never payments-admin', async () => {
    const subject = await h.issuer.projectedToken();
    for (const resource of [`${GATEWAY}/payments/admin/`, `${GATEWAY}/payments/payments-admin/`, 'HTTPS://Gateway.Example.COM:443/payments']) {
      const res = await h.exchange(subject, { resource }).expect(200);
      assert.equal(res.body.scope, 'payments-read payments-write', resource);
      assert.equal(decodeJwt(res.body.access_token).scope, 'payments-read payments-write');
    }
    const first = await expectMinted(h, () => h.exchange(subject, { resource: `${GATEWAY}/status/` }));
    assert.equal(decodeJwt(first.body.access_token).scope, 'status-read');
  });
});
