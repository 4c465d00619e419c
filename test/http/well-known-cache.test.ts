import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import supertest from 'supertest';
import { wellKnownRoutes } from '../../src/server/http/well-known-routes.js';
import { jwksDocument, type SigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { generateSigningKey, type SigningKey } from '../../src/server/mint/signing-key.js';

/*
 * The JWKS is serialized once per published key list, not per request. What is served must stay exactly what
 * serializing the key set gives, and follow the key set the moment it publishes another list. The discovery
 * documents name no key or algorithm, so a new key list leaves them as they were.
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

  it('a newly published key list is served at once in the JWKS; the discovery documents stay the same bytes', async () => {
    const { keySet, publish } = swappableKeySet([first]);
    const http = app(keySet);
    const discoveryBefore = await http.get('/.well-known/openid-configuration');
    const metadataBefore = await http.get('/.well-known/oauth-authorization-server');
    assert.deepEqual((await http.get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid), [first.kid]);

    publish([second, first]);
    const jwks = await http.get('/.well-known/jwks.json');
    assert.equal(jwks.text, JSON.stringify(jwksDocument(keySet)));
    assert.deepEqual(jwks.body.keys.map((k: { kid: string }) => k.kid), [second.kid, first.kid]);
    assert.equal((await http.get('/.well-known/openid-configuration')).text, discoveryBefore.text);
    assert.equal((await http.get('/.well-known/oauth-authorization-server')).text, metadataBefore.text);
  });

  it('discovery documents: their exact fields, JSON, cacheable for a minute', async () => {
    const { keySet } = swappableKeySet([first]);
    const http = app(keySet);
    const metadata = {
      issuer: 'https://token-broker.test',
      token_endpoint: 'https://token-broker.test/token',
      jwks_uri: 'https://token-broker.test/.well-known/jwks.json',
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      token_endpoint_auth_methods_supported: ['none'],
      response_types_supported: [],
    };
    const documents: [string, Record<string, unknown>][] = [
      ['/.well-known/oauth-authorization-server', metadata],
      ['/.well-known/openid-configuration', { ...metadata, subject_types_supported: ['public'] }],
    ];
    for (const [path, expected] of documents) {
      const res = await http.get(path);
      assert.equal(res.status, 200, path);
      assert.match(String(res.headers['content-type']), /^application\/json; charset=utf-8$/);
      assert.equal(res.headers['cache-control'], 'public, max-age=60');
      assert.deepEqual(res.body, expected, path);
    }
  });
});
