import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { startHarness, type Harness } from '../support/broker-harness.js';

/*
 * The broker's discovery documents and token endpoint as a real OAuth client sees them: openid-client 6 discovers
 * the broker over loopback HTTP (RFC 8414 and OpenID Connect discovery), exchanges a subject token through
 * genericGrantRequest, and the token it gets verifies against the discovered jwks_uri. The broker listens on a
 * real port and its publicUrl is that address, so the issuer a client is given is the issuer it finds.
 */

const CLIENT_ID = 'argo-workflow-step'; // openid-client requires one; the broker ignores it (no OAuth clients).

describe('openid-client 6 against the broker over loopback HTTP', () => {
  let server: Server;
  let h: Harness;
  let issuer: URL;

  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const publicUrl = `http://127.0.0.1:${port}`;
    h = await startHarness({ config: () => ({ server: { port, publicUrl } }) });
    server.on('request', h.broker.app);
    await h.broker.warmUp();
    issuer = new URL(publicUrl);
  });
  after(async () => {
    await h.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const discover = (algorithm: 'oauth2' | 'oidc') =>
    client.discovery(issuer, CLIENT_ID, undefined, undefined, { algorithm, execute: [client.allowInsecureRequests] });

  it("discovery with {algorithm: 'oauth2'} reads RFC 8414 metadata: the token endpoint, the grant, the JWKS", async () => {
    const metadata = (await discover('oauth2')).serverMetadata();
    assert.equal(metadata.issuer, issuer.origin);
    assert.equal(metadata.token_endpoint, `${issuer.origin}/token`);
    assert.equal(metadata.jwks_uri, `${issuer.origin}/.well-known/jwks.json`);
    assert.deepEqual(metadata.grant_types_supported, [GRANT_TYPE_TOKEN_EXCHANGE]);
    assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['none']);
    assert.deepEqual(metadata.response_types_supported, [], 'an empty list is accepted: no response type is claimed');
    assert.equal(metadata.authorization_endpoint, undefined);
  });

  it('discovery with OpenID Connect (the default) finds the same issuer, token endpoint and JWKS, and no ID-token claims', async () => {
    const oidc = (await discover('oidc')).serverMetadata();
    const oauth = (await discover('oauth2')).serverMetadata();
    assert.deepEqual([oidc.issuer, oidc.token_endpoint, oidc.jwks_uri], [oauth.issuer, oauth.token_endpoint, oauth.jwks_uri]);
    assert.equal(oidc.id_token_signing_alg_values_supported, undefined);
    assert.deepEqual(oidc.subject_types_supported, ['public']);
  });

  it('genericGrantRequest exchanges a subject token; the access token verifies against the discovered jwks_uri', async () => {
    const config = await discover('oauth2');
    const response = await client.genericGrantRequest(config, GRANT_TYPE_TOKEN_EXCHANGE, {
      subject_token: await h.issuer.projectedToken(),
      subject_token_type: TOKEN_TYPE_JWT,
    });
    assert.equal(response.issued_token_type, TOKEN_TYPE_JWT);
    assert.equal(response.token_type, 'bearer', 'openid-client normalizes Bearer');
    assert.equal(response.expires_in, 300);
    assert.equal(response.scope, 'payments-read payments-write status-read');

    const metadata = config.serverMetadata();
    assert.ok(metadata.jwks_uri !== undefined);
    const { payload, protectedHeader } = await jwtVerify(response.access_token, createRemoteJWKSet(new URL(metadata.jwks_uri)), {
      issuer: metadata.issuer,
      audience: 'tyk',
      currentDate: new Date(h.clock.now()),
    });
    assert.equal(payload.sub, 'system:serviceaccount:payments:argo-runner');
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(decodeProtectedHeader(response.access_token).kid, h.signingKeys.active()?.kid);
  });

  it('a refusal reaches openid-client as an RFC 6749 error with the broker\'s reason', async () => {
    const config = await discover('oauth2');
    const expired = await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) });
    await assert.rejects(
      client.genericGrantRequest(config, GRANT_TYPE_TOKEN_EXCHANGE, { subject_token: expired, subject_token_type: TOKEN_TYPE_JWT }),
      (error: unknown) => {
        assert.ok(error instanceof client.ResponseBodyError, `a ResponseBodyError, got ${String(error)}`);
        assert.equal(error.status, 400);
        assert.equal(error.error, 'invalid_request');
        assert.match(error.error_description ?? '', /expired 15m ago/);
        assert.equal((error.cause as { reason?: unknown }).reason, 'expired');
        return true;
      },
    );
  });
});
