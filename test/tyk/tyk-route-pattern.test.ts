import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { routeOpens, routePathProblem, tykAllowedUrl, tykPatternSource } from '../../src/server/config/tyk-route-pattern.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { buildDescribedTykPolicy } from '../../src/tools/tyk-kit/tyk-policies.js';
import { validators, errorsOf } from './tyk-schemas.js';

describe('route paths as Tyk allowed_urls patterns', () => {
  const accepted = ['/orders/', '/orders/{id}$', '/orders/{id}/lines/{line}$', '/orders/[0-9]+$', '/v1/(orders|refunds)/'];
  for (const path of accepted) {
    it(`accepts ${path}`, () => assert.equal(routePathProblem(path), undefined));
  }
  const refused: readonly [string, RegExp][] = [
    ['orders/', /must start with "\/"/],
    ['//orders', /must not start with "\/\/"/],
    ['/orders/ x', /whitespace/],
    ['/orders/(?=1)', /lookahead or lookbehind.*RE2/],
    ['/orders/(a)\\1', /backreference/],
    ['/orders/[', /not a valid regular expression/],
  ];
  for (const [path, message] of refused) {
    it(`refuses ${JSON.stringify(path)}`, () => assert.match(routePathProblem(path) ?? '', message));
  }

  it('writes ^ + path, and every {...} is one segment, as PreparePathRegexp replaces it', () => {
    assert.equal(tykAllowedUrl('/orders/{id}$'), '^/orders/{id}$');
    assert.equal(tykPatternSource('^/orders/{id}$'), '^/orders/([^/]+)$');
  });

  const table: readonly [string, string, string, boolean][] = [
    ['/orders/{id}$', 'GET', '/orders/1', true],
    ['/orders/{id}$', 'DELETE', '/orders/1', false],
    ['/orders/{id}$', 'GET', '/orders/1/lines', false],
    ['/orders/{id}$', 'GET', '/v2/orders/1', false],
    ['/orders/', 'GET', '/orders/1/lines', true],
    ['/orders/{id}$', 'HEAD', '/orders/1', false],
  ];
  for (const [path, method, request, opens] of table) {
    it(`${method} ${request} ${opens ? 'is' : 'is not'} opened by GET ${path}`, () => {
      assert.equal(routeOpens({ methods: ['GET'], path }, method, request), opens);
    });
  }
});

describe('the policies block of the configuration', () => {
  const base = {
    server: { publicUrl: 'https://broker.test' },
    issuers: [{ name: 'c', issuer: 'https://c.test', audiences: ['a'] }],
    signing: { keysDir: '/keys' },
    rules: [{ name: 'r', policies: ['orders-read'] }],
  };

  it('is optional: a configuration without it is valid as before', () => {
    const result = validateConfig(base);
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.config.policies, undefined);
  });

  const bad: readonly [object, string, RegExp][] = [
    [{ apis: [{ apiId: 'orders', routes: [{ methods: ['GET'], path: 'orders' }] }] }, 'policies.orders-read.apis[0].routes[0].path', /must start with "\/"/],
    [{ apis: [{ apiId: 'orders', routes: [{ methods: ['get'], path: '/orders/' }] }] }, 'policies.orders-read.apis[0].routes[0].methods[0]', /GET/],
    [{ apis: [{ apiId: 'orders', routes: [] }] }, 'policies.orders-read.apis[0].routes', /at least 1|>=1/],
    [{ apis: [{ apiId: 'orders' }, { apiId: 'orders' }] }, 'policies.orders-read.apis[1].apiId', /listed twice/],
    [{ apis: [{ apiId: 'orders/x' }] }, 'policies.orders-read.apis[0].apiId', /letters, digits/],
    [{ apis: [{ apiId: 'orders' }], quotaMax: 0 }, 'policies.orders-read.quotaMax', /-1 \(unlimited\)/],
    [{ apis: [{ apiId: 'orders', rutes: [] }] }, 'policies.orders-read.apis[0].rutes', /unknown key/],
    [{ apis: [] }, 'policies.orders-read.apis', /at least 1|>=1/],
  ];
  for (const [policy, path, message] of bad) {
    it(`refuses ${JSON.stringify(policy)} at ${path}`, () => {
      const result = validateConfig({ ...base, policies: { 'orders-read': policy } });
      assert.equal(result.ok, false);
      const problem = !result.ok ? result.problems.find((p) => p.path === path) : undefined;
      assert.ok(problem !== undefined, JSON.stringify(!result.ok && result.problems));
      assert.match(problem.message, message);
    });
  }

  it('a described policy becomes a Tyk policy with every API and route, valid against Tyk\'s policy shape', () => {
    const result = validateConfig({
      ...base,
      policies: {
        'orders-read': {
          apis: [
            { apiId: 'orders', apiName: 'Orders', routes: [{ methods: ['GET', 'HEAD'], path: '/orders/{id}$' }] },
            { apiId: 'status' },
          ],
          rate: 20,
          per: 1,
          quotaMax: 10000,
          quotaRenewalRate: 86400,
        },
      },
    });
    assert.ok(result.ok);
    const spec = result.config.policies?.['orders-read'];
    assert.ok(spec !== undefined);
    const policy = buildDescribedTykPolicy('orders-read', spec, 'default');
    assert.equal(validators.policy(policy), true, errorsOf(validators.policy));
    assert.deepEqual(policy.access_rights, {
      orders: { api_id: 'orders', api_name: 'Orders', versions: ['Default'], allowed_urls: [{ url: '^/orders/{id}$', methods: ['GET', 'HEAD'] }] },
      status: { api_id: 'status', api_name: 'status', versions: ['Default'], allowed_urls: [] },
    });
    assert.deepEqual([policy.rate, policy.per, policy.quota_max, policy.quota_renewal_rate], [20, 1, 10000, 86400]);
  });

  it('Tyk\'s policy shape refuses what Tyk would not read (the check has teeth)', () => {
    assert.equal(validators.policy({ id: 'p', name: 'p', org_id: 'o', active: true, rate: 1, per: 1, quota_max: -1, quota_renewal_rate: 1, access_rights: { a: { api_id: 'a', api_name: 'a', versions: [], allowed_urls: [{ path: '/x', methods: ['GET'] }] } } }), false);
    assert.equal(validators.policy({ id: 'p', name: 'p', org_id: 'o', active: true, rate: 1, per: 1, quota_max: -1, quota_renewal_rate: 1, access_rights: {}, allowed_urls: [] }), false);
  });
});
