import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openedRoutes, renderOpenedRoutes } from '../../src/tools/tyk-kit/opened-routes.js';

const described = {
  'orders-read': { apis: [{ apiId: 'orders', routes: [{ methods: ['GET'], path: '/orders/{id}$' }] }] },
  'orders-write': { apis: [{ apiId: 'orders', routes: [{ methods: ['DELETE', 'GET'], path: '/orders/{id}$' }] }, { apiId: 'ledger' }] },
  'orders-all': { apis: [{ apiId: 'orders' }] },
};

describe('openedRoutes: what granted policies open at Tyk, merged per API as Tyk merges them', () => {
  it('a read-only grant may GET, may not DELETE', () => {
    assert.deepEqual(renderOpenedRoutes(openedRoutes(['orders-read'], described)), ['orders: may GET /orders/{id}$; may not HEAD POST PUT PATCH DELETE OPTIONS']);
  });
  it('two policies: routes united, methods merged per path; an API without routes is the whole API', () => {
    const opened = openedRoutes(['orders-read', 'orders-write'], described);
    assert.deepEqual(opened.apis, [
      { apiId: 'orders', wholeApi: false, routes: [{ path: '/orders/{id}$', methods: ['GET', 'DELETE'] }], refusedMethods: ['HEAD', 'POST', 'PUT', 'PATCH', 'OPTIONS'] },
      { apiId: 'ledger', wholeApi: true, routes: [], refusedMethods: [] },
    ]);
    assert.equal(renderOpenedRoutes(opened)[1], 'ledger: may call every path and method');
  });
  it('a whole-API policy merged with a route-limited one is route-limited (MergeAllowedURLs)', () => {
    assert.deepEqual(openedRoutes(['orders-all', 'orders-read'], described).apis[0]?.routes, [{ path: '/orders/{id}$', methods: ['GET'] }]);
  });
  it('policies the configuration does not describe are named, not guessed', () => {
    assert.deepEqual(renderOpenedRoutes(openedRoutes(['status-read'], described)), ['status-read: not described in the policies block; what it opens is decided in Tyk']);
    assert.deepEqual(openedRoutes(['orders-read'], undefined).undescribed, ['orders-read']);
  });
});

describe('test-rules and explain show the routes a decision opens', () => {
  const run = (args: string[]) => {
    const env = { ...process.env };
    for (const name of ['NODE_TEST_CONTEXT', 'BROKER_CONFIG', 'PORT', 'REDIS_URL']) delete env[name];
    return spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { encoding: 'utf8', env, timeout: 60_000 });
  };
  it('test-rules on the example: the read-write runner and the read-only CI workload open different routes', () => {
    const result = run(['test-rules', '--config', 'config/broker.example.yaml', 'config/broker.example.cases.yaml']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /PASS {2}the payments runner reads and writes\n {8}orders: may GET\|HEAD\|PUT\|PATCH\|DELETE \/orders\/v1\/orders\/\{id\}\$, GET\|POST \/orders\/v1\/orders\$; may not OPTIONS\n/);
    assert.match(result.stdout, /PASS {2}CI namespaces of the EKS cluster read the status API\n {8}status: may GET\|HEAD \/status\/; may not POST PUT PATCH DELETE OPTIONS\n/);
  });
  it('explain on the example: a granted decision lists the routes under "routes"', () => {
    const result = run(['explain', '--config', 'config/broker.example.yaml', '--identity', 'test/fixtures/identities/payments-runner.yaml']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /routes +orders: may GET\|HEAD\|PUT\|PATCH\|DELETE \/orders\/v1\/orders\/\{id\}\$, GET\|POST \/orders\/v1\/orders\$; may not OPTIONS\n/);
  });
});
