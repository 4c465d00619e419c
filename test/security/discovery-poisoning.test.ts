import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useHarness, PUBLIC_URL } from '../support/broker-harness.js';

/*
 * The discovery documents are `Cache-Control: public`: a shared cache in front of the broker may serve one answer
 * to every client for a minute. Were any URL in them built from the request, one request with a forged Host or
 * X-Forwarded-* header could point every client's token_endpoint or jwks_uri at an attacker for that minute (web
 * cache poisoning), and a verifier would then trust the attacker's keys. They are built from server.publicUrl only.
 */

const DOCUMENTS = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'] as const;

const FORGED_HEADERS: Readonly<Record<string, string>> = {
  Host: 'attacker.example',
  'X-Forwarded-Host': 'attacker.example',
  'X-Forwarded-Proto': 'http',
  'X-Forwarded-Prefix': '/evil',
  'X-Original-URL': '/evil',
  Forwarded: 'host=attacker.example;proto=http',
};

describe('security: discovery documents cannot be poisoned by the request', () => {
  const h = useHarness();

  for (const path of DOCUMENTS) {
    it(`${path}: forged Host and X-Forwarded-* headers change no byte, every URL stays under server.publicUrl`, async () => {
      const honest = await h.http.get(path).expect(200);
      const forged = await h.http.get(path).set(FORGED_HEADERS).expect(200);
      assert.equal(forged.text, honest.text);
      const body = forged.body as Record<string, unknown>;
      assert.equal(body.issuer, PUBLIC_URL);
      for (const field of ['token_endpoint', 'jwks_uri']) assert.ok(String(body[field]).startsWith(`${PUBLIC_URL}/`), `${field}: ${String(body[field])}`);
      assert.doesNotMatch(forged.text, /attacker|evil/);
    });
  }

  it('a path below a discovery document, or a query, serves nothing else: 404, or the same document', async () => {
    const below = await h.http.get('/.well-known/oauth-authorization-server/attacker.example');
    assert.equal(below.status, 404);
    assert.equal((below.body as { reason?: unknown }).reason, 'not_found');
    const honest = await h.http.get('/.well-known/openid-configuration').expect(200);
    const query = await h.http.get('/.well-known/openid-configuration?issuer=https://attacker.example').expect(200);
    assert.equal(query.text, honest.text);
  });
});
