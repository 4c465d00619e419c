import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, type DoctorCheck } from '../../src/tools/doctor/doctor-check.js';
import { assessTykApis, goDurationSeconds, pointsAtBroker, type TykApiExpectation, type TykPolicySummary } from '../../src/tools/doctor/tyk-api-checks.js';
import { decodeJwtSource, tykApiViews, type JwtSource, type TykApiView } from '../../src/tools/doctor/tyk-api-view.js';
import { assessTykPolicies, tykPolicySummaries } from '../../src/tools/doctor/tyk-policies-check.js';
import { buildTykClassicApiDefinition } from '../../src/tools/tyk-kit/tyk-classic-api-definition.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { API_OPTIONS, tokenProfile } from '../tyk/token-profile.js';

const JWKS = 'https://token-broker.example/.well-known/jwks.json';
const JWKS_B64 = Buffer.from(JWKS).toString('base64');
const GRANTABLE = ['payments-read', 'payments-write', 'ledger-write'];

const EXPECTED: TykApiExpectation = {
  jwksUrl: JWKS,
  signingMethod: 'ecdsa',
  algorithm: 'ES256',
  policyFieldName: 'pol',
  grantablePolicies: GRANTABLE,
  issuer: 'https://token-broker.example',
  audience: 'tyk',
  prePublishSeconds: 300,
};

const POLICIES: readonly TykPolicySummary[] = GRANTABLE.map((id) => ({ id, orgId: 'default', apiIds: ['orders'] }));

/** A deep copy of a JSON value with `change` applied: the tests' way to break one field of a generated definition. */
function edited<T>(value: T, change: (copy: Record<string, any>) => void): Record<string, unknown> {
  const copy = structuredClone(value) as Record<string, any>;
  change(copy);
  return copy;
}

const oas = () => buildTykOasApiDefinition(tokenProfile(), API_OPTIONS);
const classic = () => buildTykClassicApiDefinition(tokenProfile(), API_OPTIONS);
const jwtOf = (copy: Record<string, any>) => copy['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth as Record<string, unknown>;

function only(definition: unknown): TykApiView[] {
  return tykApiViews([definition], undefined);
}

describe('decodeJwtSource', () => {
  const pem = '-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n';
  const cases: readonly { name: string; source: string; expected: JwtSource }[] = [
    { name: 'empty', source: '', expected: { kind: 'none' } },
    { name: 'a plain https URL', source: JWKS, expected: { kind: 'plain-url', url: JWKS } },
    { name: 'a plain http URL', source: 'http://broker:8080/.well-known/jwks.json', expected: { kind: 'plain-url', url: 'http://broker:8080/.well-known/jwks.json' } },
    { name: 'base64 of a URL', source: JWKS_B64, expected: { kind: 'base64-url', url: JWKS } },
    { name: 'base64 of a PEM', source: Buffer.from(pem).toString('base64'), expected: { kind: 'base64-pem' } },
    { name: 'base64 of an HMAC secret', source: Buffer.from('s3cr3t').toString('base64'), expected: { kind: 'base64-secret' } },
    { name: 'not base64', source: 'not base64!', expected: { kind: 'invalid' } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(decodeJwtSource(c.source), c.expected));
  }
});

describe('goDurationSeconds', () => {
  const cases: readonly [string, number | undefined][] = [
    ['240s', 240],
    ['4m', 240],
    ['1h30m', 5400],
    ['1500ms', 1.5],
    ['240', undefined],
    ['', undefined],
    ['5 s', undefined],
  ];
  for (const [text, seconds] of cases) {
    it(`"${text}" -> ${seconds}`, () => assert.equal(goDurationSeconds(text), seconds));
  }
});

describe('tykApiViews', () => {
  it('a generated Tyk OAS definition', () => {
    assert.deepEqual(only(oas()), [
      {
        apiId: 'orders',
        name: 'Orders',
        orgId: 'default',
        format: 'oas',
        oasKnown: true,
        jwtEnabled: true,
        signingMethod: 'ecdsa',
        jwksUris: [{ url: JWKS, cacheTimeout: '240s' }],
        source: { kind: 'base64-url', url: JWKS },
        headerEnabled: true,
        policyFieldName: 'pol',
        scopeMappedPolicies: GRANTABLE,
        allowedIssuers: ['https://token-broker.example'],
        allowedAudiences: ['tyk'],
      },
    ]);
  });

  it('a generated classic definition', () => {
    assert.deepEqual(only(classic()), [
      {
        apiId: 'orders',
        name: 'Orders',
        orgId: 'default',
        format: 'classic',
        oasKnown: true,
        jwtEnabled: true,
        signingMethod: 'ecdsa',
        jwksUris: [],
        source: { kind: 'base64-url', url: JWKS },
        headerEnabled: undefined,
        policyFieldName: 'pol',
        scopeMappedPolicies: GRANTABLE,
        allowedIssuers: undefined,
        allowedAudiences: undefined,
      },
    ]);
  });

  it('the classic form of a Tyk OAS API is replaced by its OAS document when the gateway lists it', () => {
    const listed = { api_id: 'orders', name: 'Orders', is_oas: true, enable_jwt: true, jwt_signing_method: 'ecdsa' };
    const [view] = tykApiViews([listed], [oas()]);
    assert.equal(view?.format, 'oas');
    assert.equal(view?.oasKnown, true);
    assert.equal(view?.headerEnabled, true);
  });

  it('without its OAS document, a Tyk OAS API is read from its classic form, header unknown', () => {
    const listed = { api_id: 'orders', is_oas: true, enable_jwt: true, jwt_jwks_uris: [{ url: JWKS, cache_timeout: '60s' }] };
    const [view] = tykApiViews([listed], undefined);
    assert.equal(view?.format, 'oas');
    assert.equal(view?.oasKnown, false);
    assert.equal(view?.headerEnabled, undefined);
    assert.deepEqual(view?.jwksUris, [{ url: JWKS, cacheTimeout: '60s' }]);
  });

  it('skips entries that are not objects, and refuses an answer that is not an array', () => {
    assert.equal(tykApiViews([null, 'x', 3], undefined).length, 0);
    assert.throws(() => tykApiViews({ apis: [] }, undefined), /not a JSON array/);
  });
});

describe('pointsAtBroker', () => {
  it('matches jwksURIs, base64 and plain sources, with URL normalisation', () => {
    assert.equal(pointsAtBroker(only(oas())[0] as TykApiView, JWKS), true);
    assert.equal(pointsAtBroker(only(classic())[0] as TykApiView, 'https://TOKEN-BROKER.example:443/.well-known/jwks.json'), true);
    assert.equal(pointsAtBroker(only(edited(classic(), (c) => (c.jwt_source = JWKS)))[0] as TykApiView, JWKS), true);
    assert.equal(pointsAtBroker(only(classic())[0] as TykApiView, 'https://other.example/.well-known/jwks.json'), false);
  });
});

describe('assessTykApis', () => {
  const okOas = check(
    'OK',
    'tyk-api orders',
    `Tyk OAS API "Orders" validates with ${JWKS}, ecdsa, header block, policy field pol, 3 of 3 grantable policies grant it`,
  );
  const regenerateOas = 'regenerate it: token-broker tyk api --config FILE --api-id orders --format oas ...';
  const cases: readonly { name: string; apis: unknown[]; apiId?: string; policies?: readonly TykPolicySummary[] | undefined; expected: DoctorCheck[] }[] = [
    { name: 'the generated OAS definition: OK', apis: [oas()], expected: [okOas] },
    {
      name: 'the generated classic definition: OK',
      apis: [classic()],
      expected: [check('OK', 'tyk-api orders', `classic API "Orders" validates with ${JWKS}, ecdsa, policy field pol, 3 of 3 grantable policies grant it`)],
    },
    {
      name: 'without policies known, no cross-check',
      apis: [oas()],
      policies: undefined,
      expected: [check('OK', 'tyk-api orders', `Tyk OAS API "Orders" validates with ${JWKS}, ecdsa, header block, policy field pol`)],
    },
    {
      name: 'a plain URL in a classic jwt_source: FAIL citing #7461',
      apis: [edited(classic(), (c) => (c.jwt_source = JWKS))],
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          `jwt_source is a plain URL (${JWKS}): Tyk v5.9+ fails every request after the first with "illegal base64 data" (TykTechnologies/tyk#7461)`,
          `put the base64 of the URL there: ${JWKS_B64}`,
        ),
      ],
    },
    {
      name: 'a plain URL in an OAS source next to jwksURIs: WARN',
      apis: [edited(oas(), (c) => (jwtOf(c).source = JWKS))],
      expected: [
        check(
          'WARN',
          'tyk-api orders',
          `source is a plain URL (${JWKS}): Tyk v5.9+ fails every request after the first with "illegal base64 data" (TykTechnologies/tyk#7461); jwksURIs take precedence on v5.9+`,
          `put the base64 of the URL there: ${JWKS_B64}`,
        ),
      ],
    },
    {
      name: 'the wrong signing family: FAIL',
      apis: [edited(oas(), (c) => (jwtOf(c).signingMethod = 'rsa'))],
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          'signing method is "rsa" but the broker signs ES256 ("ecdsa"): Tyk refuses every token ("Unexpected signing method")',
          'set signingMethod to "ecdsa"',
        ),
      ],
    },
    {
      name: 'no header block: FAIL',
      apis: [edited(oas(), (c) => delete jwtOf(c).header)],
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          'the JWT scheme has no enabled header block: Tyk OAS reads no Authorization header and answers "Authorization field missing"',
          'add header: {enabled: true, name: Authorization} to the JWT security scheme',
        ),
      ],
    },
    {
      name: 'no policy field name: FAIL',
      apis: [edited(classic(), (c) => delete c.jwt_policy_field_name)],
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          'no policy field name: Tyk reads no policy claim and refuses the broker\'s tokens ("no matching policy")',
          'set jwt_policy_field_name to "pol"',
        ),
      ],
    },
    {
      name: 'a JWKS cache as long as the pre-publish window: WARN',
      apis: [edited(oas(), (c) => ((jwtOf(c).jwksURIs as { cacheTimeout: string }[])[0]!.cacheTimeout = '5m'))],
      expected: [
        check(
          'WARN',
          'tyk-api orders',
          'caches the broker\'s JWKS for 5m, not less than signing.prePublishSeconds (300 s): new keys can sign before this API has fetched them',
          'lower cacheTimeout, or raise signing.prePublishSeconds (and signing.tykJwksCacheSeconds to match)',
        ),
      ],
    },
    {
      name: 'issuer and audience the broker does not mint: FAIL each',
      apis: [edited(oas(), (c) => Object.assign(jwtOf(c), { allowedIssuers: ['https://token-broker.example/'], allowedAudiences: ['orders'] }))],
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          'allowedIssuers ["https://token-broker.example/"] lacks the broker\'s issuer "https://token-broker.example" (server.publicUrl, exactly)',
          'add "https://token-broker.example" to allowedIssuers',
        ),
        check('FAIL', 'tyk-api orders', 'allowedAudiences ["orders"] lacks the broker\'s default audience "tyk"', 'add "tyk" to allowedAudiences'),
      ],
    },
    {
      name: 'a scope mapping without some grantable policies: WARN',
      apis: [edited(oas(), (c) => ((jwtOf(c).scopes as { scopeToPolicyMapping: unknown[] }).scopeToPolicyMapping = [{ scope: 'payments-read', policyId: 'payments-read' }]))],
      expected: [
        check(
          'WARN',
          'tyk-api orders',
          'the scope-to-policy mapping lacks payments-write, ledger-write: a token granting several policies gets only its first one (the policy claim) here',
          regenerateOas,
        ),
      ],
    },
    {
      name: 'no policy grants the API: FAIL',
      apis: [oas()],
      policies: GRANTABLE.map((id) => ({ id, orgId: 'default', apiIds: ['other'] })),
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          'none of the policies the rules grant has orders in its access_rights: Tyk answers "Access to this API has been disallowed"',
          'token-broker tyk policies --config FILE --api-id orders',
        ),
      ],
    },
    {
      name: 'policies of another org: FAIL',
      apis: [oas()],
      policies: [{ id: 'payments-read', orgId: 'acme', apiIds: ['orders'] }, ...POLICIES.slice(1)],
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          'policy payments-read (org_id "acme") belongs to another org than the API ("default"): Tyk does not apply them',
          'give the policies the API\'s org_id (token-broker tyk policies --org-id)',
        ),
      ],
    },
    {
      name: 'no API takes the broker\'s JWKS: FAIL naming the JWT APIs',
      apis: [edited(oas(), (c) => ((jwtOf(c).jwksURIs as { url: string }[])[0]!.url = 'https://idp.example/jwks', (jwtOf(c).source = '')))],
      expected: [
        check(
          'FAIL',
          'tyk-apis',
          `none of the 1 API(s) in Tyk takes keys from the broker's JWKS ${JWKS} (JWT APIs: orders)`,
          'load an API definition from token-broker tyk api --config FILE --api-id ID ..., or check server.publicUrl',
        ),
      ],
    },
    {
      name: '--api-id names an API Tyk does not have: FAIL',
      apis: [oas()],
      apiId: 'ledger',
      expected: [check('FAIL', 'tyk-api ledger', 'Tyk has no API with id ledger (it has orders)', 'load one: token-broker tyk api --config FILE --api-id ledger ...')],
    },
    {
      name: '--api-id names an API with other keys: FAIL',
      apis: [edited(classic(), (c) => (c.jwt_source = Buffer.from('https://idp.example/jwks').toString('base64')))],
      apiId: 'orders',
      expected: [
        check(
          'FAIL',
          'tyk-api orders',
          `takes its keys from https://idp.example/jwks, not the broker's JWKS ${JWKS}`,
          'regenerate it: token-broker tyk api --config FILE --api-id orders --format classic ...',
        ),
      ],
    },
    {
      name: 'several APIs take the broker\'s JWKS: each is checked, others ignored',
      apis: [
        oas(),
        edited(classic(), (c) => Object.assign(c, { api_id: 'ledger', name: 'Ledger', jwt_signing_method: 'rsa' })),
        edited(classic(), (c) => Object.assign(c, { api_id: 'idp', jwt_source: Buffer.from('https://idp.example/jwks').toString('base64') })),
      ],
      policies: [...POLICIES, ...GRANTABLE.map((id) => ({ id: `${id}-ledger`, orgId: 'default', apiIds: ['ledger'] })), { id: 'payments-read', orgId: 'default', apiIds: ['ledger'] }],
      expected: [
        okOas,
        check(
          'FAIL',
          'tyk-api ledger',
          'signing method is "rsa" but the broker signs ES256 ("ecdsa"): Tyk refuses every token ("Unexpected signing method")',
          'set jwt_signing_method to "ecdsa"',
        ),
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const policies = 'policies' in c ? c.policies : POLICIES;
      assert.deepEqual(assessTykApis(tykApiViews(c.apis, undefined), EXPECTED, policies, c.apiId), c.expected);
    });
  }

  it('a Tyk OAS API whose document could not be read: WARN that the header was not checked', () => {
    const listed = { api_id: 'orders', name: 'Orders', org_id: 'default', is_oas: true, enable_jwt: true, jwt_signing_method: 'ecdsa', jwt_source: JWKS_B64, jwt_policy_field_name: 'pol', jwt_scope_to_policy_mapping: Object.fromEntries(GRANTABLE.map((p) => [p, p])) };
    assert.deepEqual(assessTykApis(tykApiViews([listed], undefined), EXPECTED, POLICIES), [
      check('WARN', 'tyk-api orders', 'its Tyk OAS document could not be read (GET /tyk/apis/oas), so the header block was not checked'),
    ]);
  });
});

describe('tykPolicySummaries', () => {
  it('reads an array of policies', () => {
    assert.deepEqual(tykPolicySummaries([{ id: 'a', org_id: 'default', access_rights: { orders: {}, ledger: {} } }, { id: 'b' }]), [
      { id: 'a', orgId: 'default', apiIds: ['orders', 'ledger'] },
      { id: 'b', orgId: '', apiIds: [] },
    ]);
  });
  it('reads a map id -> policy, and a Dashboard-style _id', () => {
    assert.deepEqual(tykPolicySummaries({ a: { _id: 'a', org_id: 'o' } }), [{ id: 'a', orgId: 'o', apiIds: [] }]);
  });
  it('skips entries without an id, refuses what is no list', () => {
    assert.deepEqual(tykPolicySummaries([{ name: 'x' }, null]), []);
    assert.throws(() => tykPolicySummaries('policies'), /not a JSON array/);
  });
});

describe('assessTykPolicies', () => {
  const create = 'create them: token-broker tyk policies --config FILE --api-id ID --out DIR, into Tyk\'s policies.policy_path, then reload Tyk';
  const cases: readonly { name: string; grantable: string[]; templated: string[]; inTyk: string[]; expected: DoctorCheck[] }[] = [
    { name: 'all present', grantable: ['a', 'b'], templated: [], inTyk: ['b', 'a', 'c'], expected: [check('OK', 'tyk-policies', 'all 2 policies the rules can grant exist in Tyk (3 in Tyk)')] },
    {
      name: 'missing ones are named: FAIL',
      grantable: ['a', 'b', 'c'],
      templated: [],
      inTyk: ['b'],
      expected: [check('FAIL', 'tyk-policies', 'policies the rules can grant are missing in Tyk: a, c (2 of 3); tokens naming them are refused ("no matching policy")', create)],
    },
    {
      name: 'templates cannot be checked: WARN',
      grantable: ['a'],
      templated: ['{namespace.labels.team}-read'],
      inTyk: ['a'],
      expected: [
        check('OK', 'tyk-policies', 'all 1 policies the rules can grant exist in Tyk (1 in Tyk)'),
        check('WARN', 'tyk-policies', 'templated policies are resolved per request and were not checked: {namespace.labels.team}-read', 'make sure every value they can produce exists in Tyk'),
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(assessTykPolicies(c.grantable, c.templated, c.inTyk.map((id) => ({ id, orgId: 'default', apiIds: [] }))), c.expected);
    });
  }
});
