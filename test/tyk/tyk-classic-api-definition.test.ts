import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FORBIDDEN_MINTED_CLAIMS, SIGNING_ALGORITHMS } from '../../src/server/protocol.js';
import { buildTykClassicApiDefinition } from '../../src/tools/tyk-kit/tyk-classic-api-definition.js';
import { API_OPTIONS, tokenProfile } from './token-profile.js';

const JWKS_URL = 'https://token-broker.example/.well-known/jwks.json';

describe('buildTykClassicApiDefinition', () => {
  it('the whole definition for the default profile', () => {
    assert.deepEqual(buildTykClassicApiDefinition(tokenProfile(), API_OPTIONS), {
      name: 'Orders',
      api_id: 'orders',
      org_id: 'default',
      active: true,
      use_keyless: false,
      enable_jwt: true,
      auth_configs: { jwt: { name: 'jwtAuth', auth_header_name: 'Authorization' } },
      strip_auth_data: true,
      jwt_signing_method: 'ecdsa',
      jwt_source: 'aHR0cHM6Ly90b2tlbi1icm9rZXIuZXhhbXBsZS8ud2VsbC1rbm93bi9qd2tzLmpzb24=',
      jwt_identity_base_field: 'sub',
      jwt_policy_field_name: 'pol',
      jwt_scope_claim_name: 'scope',
      jwt_scope_to_policy_mapping: { 'payments-read': 'payments-read', 'payments-write': 'payments-write', 'ledger-write': 'ledger-write' },
      idp_client_id_mapping_disabled: true,
      jwt_issued_at_validation_skew: 5,
      jwt_not_before_validation_skew: 5,
      jwt_expires_at_validation_skew: 5,
      proxy: { listen_path: '/orders/', target_url: 'http://orders.payments.svc:8080', strip_listen_path: true },
      version_data: { not_versioned: true, default_version: 'Default', versions: { Default: { name: 'Default', use_extended_paths: true, extended_paths: {} } } },
    });
  });

  const families = { ES256: 'ecdsa', ES384: 'ecdsa', RS256: 'rsa', PS256: 'rsa' } as const;
  for (const algorithm of SIGNING_ALGORITHMS) {
    it(`signing.algorithm ${algorithm} -> jwt_signing_method ${families[algorithm]}`, () => {
      assert.equal(buildTykClassicApiDefinition(tokenProfile({ signing: { algorithm } }), API_OPTIONS).jwt_signing_method, families[algorithm]);
    });
  }

  const publicUrls: readonly [string, string][] = [
    ['https://token-broker.example', JWKS_URL],
    ['https://token-broker.example/', JWKS_URL],
    ['https://example.com/broker', 'https://example.com/broker/.well-known/jwks.json'],
  ];
  for (const [publicUrl, jwksUrl] of publicUrls) {
    it(`jwt_source is base64 and decodes to the JWKS URL (publicUrl ${publicUrl})`, () => {
      const { jwt_source } = buildTykClassicApiDefinition(tokenProfile({ publicUrl }), API_OPTIONS);
      // A plain URL fails every request after the first since Tyk v5.9 (TykTechnologies/tyk#7461).
      assert.doesNotMatch(jwt_source, /^https?:/);
      assert.match(jwt_source, /^[A-Za-z0-9+/]+={0,2}$/);
      assert.equal(Buffer.from(jwt_source, 'base64').toString('utf8'), jwksUrl);
    });
  }

  it('claim names follow the configuration', () => {
    const definition = buildTykClassicApiDefinition(tokenProfile({ tokens: { policyClaim: 'tyk_policy', scopeClaim: 'grants' } }), API_OPTIONS);
    assert.equal(definition.jwt_policy_field_name, 'tyk_policy');
    assert.equal(definition.jwt_scope_claim_name, 'grants');
    assert.equal(definition.jwt_identity_base_field, 'sub');
  });

  it('the scope mapping covers every grantable policy, and no template', () => {
    const config = tokenProfile({ rules: [{ name: 'a', policies: ['p1', '{team}-read'] }, { name: 'b', policies: ['p2', 'p1'] }] });
    assert.deepEqual(buildTykClassicApiDefinition(config, API_OPTIONS).jwt_scope_to_policy_mapping, { p1: 'p1', p2: 'p2' });
  });

  it('no OAuth client mapping and no fallback policy', () => {
    const definition = buildTykClassicApiDefinition(tokenProfile(), API_OPTIONS);
    assert.equal('jwt_client_base_field' in definition, false);
    // Without a policy claim Tyk must refuse, not fall back to a default policy.
    assert.equal('jwt_default_policies' in definition, false);
    assert.equal(definition.idp_client_id_mapping_disabled, true);
    const text = JSON.stringify(definition);
    for (const claim of FORBIDDEN_MINTED_CLAIMS) assert.equal(text.includes(`"${claim}"`), false, claim);
  });
});
