import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SIGNING_ALGORITHMS } from '../../src/server/protocol.js';
import { FORBIDDEN_MINTED_CLAIMS } from '../../src/server/protocol.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { API_OPTIONS, tokenProfile } from './token-profile.js';

const JWKS_URL = 'https://token-broker.example/.well-known/jwks.json';

describe('buildTykOasApiDefinition', () => {
  it('the whole definition for the default profile', () => {
    assert.deepEqual(buildTykOasApiDefinition(tokenProfile(), API_OPTIONS), {
      openapi: '3.0.3',
      info: { title: 'Orders', version: '1.0.0' },
      paths: {},
      components: { securitySchemes: { jwtAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ jwtAuth: [] }],
      'x-tyk-api-gateway': {
        info: { id: 'orders', orgId: 'default', name: 'Orders', state: { active: true } },
        upstream: { url: 'http://orders.payments.svc:8080' },
        server: {
          listenPath: { value: '/orders/', strip: true },
          authentication: {
            enabled: true,
            stripAuthorizationData: true,
            securitySchemes: {
              jwtAuth: {
                enabled: true,
                header: { enabled: true, name: 'Authorization' },
                source: Buffer.from(JWKS_URL).toString('base64'),
                jwksURIs: [{ url: JWKS_URL, cacheTimeout: '240s' }],
                signingMethod: 'ecdsa',
                identityBaseField: 'sub',
                policyFieldName: 'pol',
                scopes: {
                  claimName: 'scope',
                  scopeToPolicyMapping: [
                    { scope: 'payments-read', policyId: 'payments-read' },
                    { scope: 'payments-write', policyId: 'payments-write' },
                    { scope: 'ledger-write', policyId: 'ledger-write' },
                  ],
                },
                allowedIssuers: ['https://token-broker.example'],
                allowedAudiences: ['tyk'],
                idpClientIdMappingDisabled: true,
                issuedAtValidationSkew: 5,
                notBeforeValidationSkew: 5,
                expiresAtValidationSkew: 5,
              },
            },
          },
        },
      },
    });
  });

  const families = { ES256: 'ecdsa', ES384: 'ecdsa', RS256: 'rsa', PS256: 'rsa' } as const;
  for (const algorithm of SIGNING_ALGORITHMS) {
    it(`signing.algorithm ${algorithm} -> signingMethod ${families[algorithm]}`, () => {
      const definition = buildTykOasApiDefinition(tokenProfile({ signing: { algorithm } }), API_OPTIONS);
      assert.equal(definition['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth.signingMethod, families[algorithm]);
    });
  }

  it('claim names, issuer and audiences follow the configuration', () => {
    const config = tokenProfile({
      publicUrl: 'https://broker.example/',
      tokens: { audience: 'gw', allowedAudiences: ['gw', 'gw-batch'], policyClaim: 'tyk_policy', scopeClaim: 'grants' },
    });
    const jwt = buildTykOasApiDefinition(config, API_OPTIONS)['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth;
    assert.equal(jwt.policyFieldName, 'tyk_policy');
    assert.equal(jwt.scopes.claimName, 'grants');
    assert.deepEqual(jwt.allowedIssuers, ['https://broker.example/']);
    assert.deepEqual(jwt.allowedAudiences, ['gw', 'gw-batch']);
    assert.deepEqual(jwt.jwksURIs, [{ url: 'https://broker.example/.well-known/jwks.json', cacheTimeout: '240s' }]);
  });

  it('the JWKS cache timeout is a Tyk duration in seconds', () => {
    const jwt = buildTykOasApiDefinition(tokenProfile(), { ...API_OPTIONS, jwksCacheSeconds: 60 })['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth;
    assert.deepEqual(jwt.jwksURIs, [{ url: JWKS_URL, cacheTimeout: '60s' }]);
  });

  it('source is the base64 of the JWKS URL, never a plain URL (TykTechnologies/tyk#7461)', () => {
    const jwt = buildTykOasApiDefinition(tokenProfile(), API_OPTIONS)['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth;
    assert.doesNotMatch(jwt.source, /^https?:/);
    assert.equal(Buffer.from(jwt.source, 'base64').toString('utf8'), JWKS_URL);
  });

  it('the scope mapping covers every grantable policy once, and no template', () => {
    const config = tokenProfile({
      rules: [
        { name: 'a', policies: ['p1', '{namespace.labels.team}-read', 'p2'] },
        { name: 'b', policies: ['p2', 'p3'] },
      ],
    });
    const jwt = buildTykOasApiDefinition(config, API_OPTIONS)['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth;
    assert.deepEqual(jwt.scopes.scopeToPolicyMapping, [
      { scope: 'p1', policyId: 'p1' },
      { scope: 'p2', policyId: 'p2' },
      { scope: 'p3', policyId: 'p3' },
    ]);
  });

  it('no OAuth client mapping: no client base field, IdP client-id mapping disabled, no client claim named', () => {
    const definition = buildTykOasApiDefinition(tokenProfile(), API_OPTIONS);
    const jwt = definition['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth;
    assert.equal('clientBaseField' in jwt, false);
    assert.equal('defaultPolicies' in jwt, false);
    assert.equal(jwt.idpClientIdMappingDisabled, true);
    const text = JSON.stringify(definition);
    for (const claim of FORBIDDEN_MINTED_CLAIMS) assert.equal(text.includes(`"${claim}"`), false, claim);
  });
});
