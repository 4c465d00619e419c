import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import supertest from 'supertest';
import { wellKnownRoutes } from '../../src/http/well-known-routes.js';
import { jwksDocument, type SigningKeySet } from '../../src/mint/signing-key-set.js';
import { generateSigningKey, type SigningKey } from '../../src/mint/signing-key.js';

/*
 * The JWKS and discovery documents are serialized once per published key list, not per request. What is served
 * must stay exactly what serializing the key set gives, and follow the key set the moment it publishes another list.
 */

describe('/.well-known documents, serialized once per key list', () => {
  let first: SigningKey;
  let second: SigningKey;
  before(async () => {
    first = await generateSigningKey('ES256', 1);
    second = await generateSigningKey('RS256', 2);
  });

  /** A key set whose published list can be swapped, counting how often it is asked. */
  function swappableKeySet(initial: readonly SigningKey[]) {
    let published: readonly SigningKey[] = Object.freeze([...initial]);
    const keySet: SigningKeySet = { active: () => published[0], published: () => published };
    return {
      keySet,
      publish(keys: readonly SigningKey[]) {
        published = Object.freeze([...keys]);
      },
    };
  }

  function app(keySet: SigningKeySet) {
    const server = express();
    server.use(wellKnownRoutes('https://token-broker.test', keySet));
    return supertest(server);
  }

  it('serves exactly JSON.stringify(jwksDocument(keys)), and the same bytes again', async () => {
    const { keySet } = swappableKeySet([first]);
    const http = app(keySet);
    const a = await http.get('/.well-known/jwks.json');
    const b = await http.get('/.well-known/jwks.json');
    assert.equal(a.status, 200);
    assert.equal(a.text, JSON.stringify(jwksDocument(keySet)));
    assert.equal(b.text, a.text);
    assert.match(String(a.headers['content-type']), /^application\/jwk-set\+json/);
    assert.equal(a.headers['cache-control'], 'public, max-age=60');
  });

  it('a newly published key list is served at once, in the JWKS and in discovery', async () => {
    const { keySet, publish } = swappableKeySet([first]);
    const http = app(keySet);
    const before = await http.get('/.well-known/openid-configuration');
    assert.deepEqual(before.body.id_token_signing_alg_values_supported, ['ES256']);
    assert.deepEqual((await http.get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid), [first.kid]);

    publish([second, first]);
    const jwks = await http.get('/.well-known/jwks.json');
    assert.equal(jwks.text, JSON.stringify(jwksDocument(keySet)));
    assert.deepEqual(jwks.body.keys.map((k: { kid: string }) => k.kid), [second.kid, first.kid]);
    const after = await http.get('/.well-known/openid-configuration');
    assert.deepEqual(after.body.id_token_signing_alg_values_supported, ['RS256', 'ES256']);
  });

  it('discovery keeps its document and content type', async () => {
    const { keySet } = swappableKeySet([first]);
    const res = await app(keySet).get('/.well-known/openid-configuration');
    assert.match(String(res.headers['content-type']), /^application\/json; charset=utf-8$/);
    assert.deepEqual(res.body, {
      issuer: 'https://token-broker.test',
      jwks_uri: 'https://token-broker.test/.well-known/jwks.json',
      token_endpoint: 'https://token-broker.test/token',
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      token_endpoint_auth_methods_supported: ['none'],
      id_token_signing_alg_values_supported: ['ES256'],
      response_types_supported: ['token'],
      subject_types_supported: ['public'],
    });
  });
});
