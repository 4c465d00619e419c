import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ValidateFunction } from 'ajv';
import { SIGNING_ALGORITHMS } from '../../src/server/protocol.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { buildTykClassicApiDefinition } from '../../src/tools/tyk-kit/tyk-classic-api-definition.js';
import { draft04ToDraft07, errorsOf, validators } from './tyk-schemas.js';
import { API_OPTIONS, tokenProfile } from './token-profile.js';

function assertValid(validate: ValidateFunction, value: unknown, what: string): void {
  assert.equal(validate(value), true, `${what}:\n${errorsOf(validate)}`);
}

/** A JSON copy that tests may break freely. */
function mutable(value: object): Record<string, any> {
  return JSON.parse(JSON.stringify(value)) as Record<string, any>;
}

const profiles = [
  ...SIGNING_ALGORITHMS.map((algorithm) => ({ name: algorithm, config: tokenProfile({ signing: { algorithm } }) })),
  {
    name: 'custom claims, several audiences, many policies',
    config: tokenProfile({
      publicUrl: 'https://broker.example/base/',
      tokens: { audience: 'gw', allowedAudiences: ['gw', 'gw-batch'], policyClaim: 'tyk_policy', scopeClaim: 'grants' },
      rules: [
        { name: 'a', policies: ['p1', 'p2', '{namespace.labels.team}-read'] },
        { name: 'b', policies: ['p3', 'p1'] },
      ],
    }),
  },
];

describe('generated Tyk OAS API definitions validate against Tyk\'s schemas', () => {
  for (const { name, config } of profiles) {
    const definition = buildTykOasApiDefinition(config, API_OPTIONS);
    it(`${name}: the whole document, as the gateway validates it (OpenAPI 3.0 + x-tyk-api-gateway)`, () => {
      assertValid(validators.oasDocument, definition, 'OAS document');
    });
    it(`${name}: with Tyk's strict extension schema, so no field name is unknown to Tyk`, () => {
      assertValid(validators.oasDocumentStrict, definition, 'OAS document, strict');
      assertValid(validators.xTykApiGatewayStrict, definition['x-tyk-api-gateway'], 'x-tyk-api-gateway, strict');
      assertValid(validators.xTykApiGateway, definition['x-tyk-api-gateway'], 'x-tyk-api-gateway');
    });
    it(`${name}: the JWT security scheme against X-Tyk-JWT itself, strictly`, () => {
      assertValid(validators.jwtSchemeStrict, definition['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth, 'X-Tyk-JWT, strict');
    });
    it(`${name}: every scope-to-policy entry (the schema's tuple-form items check only the first)`, () => {
      const mapping = definition['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth.scopes.scopeToPolicyMapping;
      assert.ok(mapping.length > 0);
      for (const entry of mapping) assertValid(validators.scopeToPolicyStrict, entry, JSON.stringify(entry));
    });
  }

  // The validators must be able to fail, or the tests above prove nothing. `lenient` marks what the published
  // schema lets through: its security schemes are an anyOf of every Tyk scheme without additionalProperties,
  // so a broken JWT scheme still passes as, say, X-Tyk-Token. Only the strict form checks the JWT fields.
  const breakages: readonly { name: string; mutate: (d: Record<string, any>) => void; lenient?: true }[] = [
    { name: 'missing paths', mutate: (d) => delete d.paths },
    { name: 'a non-http security scheme type', mutate: (d) => (d.components.securitySchemes.jwtAuth.type = 'bearer') },
    { name: 'an empty listen path', mutate: (d) => (d['x-tyk-api-gateway'].server.listenPath.value = '') },
    {
      name: 'a JWKS cache timeout that is not a duration',
      mutate: (d) => (d['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth.jwksURIs[0].cacheTimeout = 240),
      lenient: true,
    },
    {
      name: 'a negative skew',
      mutate: (d) => (d['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth.expiresAtValidationSkew = -1),
      lenient: true,
    },
    { name: 'no upstream url', mutate: (d) => delete d['x-tyk-api-gateway'].upstream.url },
    {
      name: 'a misspelled field',
      mutate: (d) => {
        const jwt = d['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth;
        jwt.policyFieldname = jwt.policyFieldName;
        delete jwt.policyFieldName;
      },
      lenient: true,
    },
  ];
  for (const breakage of breakages) {
    it(`refuses ${breakage.name}`, () => {
      const broken = mutable(buildTykOasApiDefinition(tokenProfile(), API_OPTIONS));
      breakage.mutate(broken);
      assert.equal(validators.oasDocumentStrict(broken), false);
      assert.equal(validators.oasDocument(broken), breakage.lenient === true);
    });
  }
});

describe('generated classic API definitions validate against Tyk\'s classic schema', () => {
  for (const { name, config } of profiles) {
    it(name, () => {
      assertValid(validators.classic, buildTykClassicApiDefinition(config, API_OPTIONS), 'classic definition');
    });
  }

  const breakages: readonly { name: string; mutate: (d: Record<string, any>) => void }[] = [
    { name: 'an unknown top-level field', mutate: (d) => (d.jwt_sauce = 'x') },
    { name: 'no proxy target', mutate: (d) => delete d.proxy.target_url },
    { name: 'no versions', mutate: (d) => delete d.version_data.versions },
    { name: 'a string skew', mutate: (d) => (d.jwt_expires_at_validation_skew = '5') },
  ];
  for (const breakage of breakages) {
    it(`refuses ${breakage.name}`, () => {
      const broken = mutable(buildTykClassicApiDefinition(tokenProfile(), API_OPTIONS));
      breakage.mutate(broken);
      assert.equal(validators.classic(broken), false);
    });
  }
});

describe('draft04ToDraft07', () => {
  it('drops draft-04 ids and $schema, converts boolean exclusive bounds, keeps properties named like keywords', () => {
    assert.deepEqual(
      draft04ToDraft07({
        $schema: 'http://json-schema.org/draft-04/schema#',
        id: 'http://jsonschema.net',
        properties: {
          id: { type: 'string', id: 'http://jsonschema.net/id' },
          exclusiveMinimum: { type: 'boolean', default: false },
          n: { type: 'number', minimum: 0, exclusiveMinimum: true },
          m: { type: 'number', maximum: 9, exclusiveMaximum: false },
        },
      }),
      {
        properties: {
          id: { type: 'string' },
          exclusiveMinimum: { type: 'boolean', default: false },
          n: { type: 'number', exclusiveMinimum: 0 },
          m: { type: 'number', maximum: 9 },
        },
      },
    );
  });
});
