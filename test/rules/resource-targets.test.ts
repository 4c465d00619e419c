import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BrokerError } from '../../src/server/errors.js';
import { parseResourceIndicator } from '../../src/server/rules/resource-indicator.js';
import { apiNamedBy, compileResourceTargets, narrowToResource, pathIsUnder } from '../../src/server/rules/resource-targets.js';
import type { TykApisConfig } from '../../src/server/config/tyk-apis-schema.js';
import type { TykPoliciesConfig } from '../../src/server/config/tyk-policies-schema.js';

const APIS: TykApisConfig = [
  { apiId: 'orders', urls: ['https://gateway.example.com/orders/', 'http://tyk-gateway.tyk.svc:8080/orders/'] },
  { apiId: 'orders-admin', urls: ['https://gateway.example.com/orders-admin/'] },
  { apiId: 'orders-reports', urls: ['https://gateway.example.com/orders/reports/'] },
  { apiId: 'status', urls: ['https://status.example.com/'] },
];
const POLICIES: TykPoliciesConfig = {
  'orders-read': { apis: [{ apiId: 'orders' }] },
  'orders-write': { apis: [{ apiId: 'orders' }, { apiId: 'orders-reports' }] },
  'admin': { apis: [{ apiId: 'orders-admin' }] },
  'status-read': { apis: [{ apiId: 'status' }] },
};
const TARGETS = compileResourceTargets(APIS, POLICIES);
const named = (text: string) => apiNamedBy(parseResourceIndicator(text), TARGETS);

describe('pathIsUnder: "/" boundaries', () => {
  const cases: readonly [string, string, boolean][] = [
    ['/orders/', '/orders/', true],
    ['/orders', '/orders/', true],
    ['/orders/1', '/orders/', true],
    ['/orders-admin/', '/orders/', false],
    ['/ordersx', '/orders/', false],
    ['/order', '/orders/', false],
    ['/', '/orders/', false],
    ['/anything', '/', true],
    ['/', '/', true],
  ];
  for (const [path, listenPath, expected] of cases) {
    it(`${path} under ${listenPath}: ${expected}`, () => assert.equal(pathIsUnder(path, listenPath), expected));
  }
});

describe('apiNamedBy', () => {
  const cases: readonly [string, string | undefined][] = [
    ['https://gateway.example.com/orders/', 'orders'],
    ['https://gateway.example.com/orders', 'orders'],
    ['https://gateway.example.com/orders/42', 'orders'],
    ['HTTPS://GATEWAY.example.COM/orders/42', 'orders'],
    ['https://gateway.example.com:443/orders/', 'orders'],
    ['http://tyk-gateway.tyk.svc:8080/orders/', 'orders'],
    // the longest listen path wins, as the gateway routes
    ['https://gateway.example.com/orders/reports/2026', 'orders-reports'],
    ['https://gateway.example.com/orders/reports', 'orders-reports'],
    ['https://gateway.example.com/orders/reportsx', 'orders'],
    ['https://gateway.example.com/orders-admin/', 'orders-admin'],
    ['https://status.example.com/', 'status'],
    ['https://status.example.com', 'status'],
    ['https://status.example.com/anything', 'status'],
    // not named
    ['https://gateway.example.com/', undefined],
    ['https://gateway.example.com/ORDERS/', undefined],
    ['http://gateway.example.com/orders/', undefined],
    ['https://gateway.example.com:8443/orders/', undefined],
    ['https://gateway.example.com.evil.example/orders/', undefined],
    ['https://evil.example/orders/', undefined],
    ['https://tyk-gateway.tyk.svc:8080/orders/', undefined],
  ];
  for (const [text, expected] of cases) {
    it(`${text} -> ${String(expected)}`, () => assert.equal(named(text), expected));
  }
});

function refusalOf(run: () => unknown): BrokerError {
  try {
    run();
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  assert.fail('expected a refusal');
}

describe('narrowToResource', () => {
  const granted = ['orders-read', 'orders-write', 'status-read'];
  it('keeps only the policies opening the named API, in grant order', () => {
    assert.deepEqual(narrowToResource(granted, parseResourceIndicator('https://gateway.example.com/orders/1'), TARGETS), ['orders-read', 'orders-write']);
    assert.deepEqual(narrowToResource(granted, parseResourceIndicator('https://gateway.example.com/orders/reports/'), TARGETS), ['orders-write']);
    assert.deepEqual(narrowToResource(granted, parseResourceIndicator('https://status.example.com/'), TARGETS), ['status-read']);
  });

  it('an API no selected policy opens: resource_not_granted, the description naming neither policies nor APIs', () => {
    const refusal = refusalOf(() => narrowToResource(granted, parseResourceIndicator('https://gateway.example.com/orders-admin/'), TARGETS));
    assert.deepEqual([refusal.oauthError, refusal.status, refusal.code], ['invalid_target', 400, 'resource_not_granted']);
    assert.equal(refusal.description, 'This workload is granted no policy that opens the API the "resource" parameter names.');
    assert.match(refusal.detail ?? '', /orders-admin/);
  });

  it('a URL no API is served at: unknown_resource', () => {
    const refusal = refusalOf(() => narrowToResource(granted, parseResourceIndicator('https://gateway.example.com/payments/'), TARGETS));
    assert.deepEqual([refusal.oauthError, refusal.code, refusal.description], ['invalid_target', 'unknown_resource', 'The "resource" parameter names no API this broker issues tokens for.']);
  });

  it('without an apis block every resource is refused, never ignored', () => {
    for (const targets of [undefined, compileResourceTargets(undefined, POLICIES)]) {
      const refusal = refusalOf(() => narrowToResource(granted, parseResourceIndicator('https://gateway.example.com/orders/'), targets));
      assert.deepEqual([refusal.oauthError, refusal.code], ['invalid_target', 'unknown_resource']);
      assert.match(refusal.description, /no API is configured/);
    }
  });

  it('a policy the policies block does not describe opens nothing', () => {
    const refusal = refusalOf(() => narrowToResource(['unlisted'], parseResourceIndicator('https://gateway.example.com/orders/'), TARGETS));
    assert.equal(refusal.code, 'resource_not_granted');
  });
});

describe('narrowToResource: property', () => {
  const hosts = ['gateway.example.com', 'gateway.example.com.evil.example', 'other.example'];
  const segments = ['orders', 'orders-admin', 'reports', 'x', 'ORDERS'];
  const path = fc.array(fc.constantFrom(...segments), { maxLength: 3 }).chain((parts) =>
    fc.constantFrom(`/${parts.join('/')}`, `/${parts.join('/')}/`).map((p) => p.replace(/\/+/g, '/')),
  );
  const resource = fc.record({ scheme: fc.constantFrom('https', 'HTTPS', 'http'), host: fc.constantFrom(...hosts), path }).map(({ scheme, host, path: p }) => `${scheme}://${host}${p}`);
  const policySet = fc.subarray(Object.keys(POLICIES).concat(['unlisted']));

  it('a resource is granted only if some kept policy opens an API whose base URL prefixes it at a "/" boundary', () => {
    fc.assert(
      fc.property(resource, policySet, (text, policies) => {
        const indicator = parseResourceIndicator(text);
        let kept: readonly string[];
        try {
          kept = narrowToResource(policies, indicator, TARGETS);
        } catch (error) {
          assert.ok(error instanceof BrokerError && error.oauthError === 'invalid_target');
          return;
        }
        assert.ok(kept.length > 0);
        assert.ok(kept.every((policy) => policies.includes(policy)), 'never more than was selected');
        const url = new URL(text);
        for (const policy of kept) {
          const opened = POLICIES[policy]?.apis.map((access) => access.apiId) ?? [];
          const bases = APIS.filter((api) => opened.includes(api.apiId)).flatMap((api) => api.urls);
          assert.ok(
            bases.some((base) => {
              const b = new URL(base);
              return b.origin === url.origin && (url.pathname === b.pathname.slice(0, -1) || url.pathname.startsWith(b.pathname));
            }),
            `${policy} opens no API served at ${text}`,
          );
        }
      }),
      { numRuns: 500 },
    );
  });
});
