import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseListenPath } from '../../src/tools/tyk-kit/api-listen-path.js';

const config = {
  apis: [
    { apiId: 'orders', urls: ['https://gateway.example.com/orders/', 'http://tyk-gateway.tyk.svc:8080/orders/'] },
    { apiId: 'split', urls: ['https://a.example.com/split/', 'https://b.example.com/other/'] },
  ],
};

describe('chooseListenPath: tyk api against the apis block', () => {
  const cases: readonly [string, string, string | undefined, ReturnType<typeof chooseListenPath>][] = [
    ['no flag, one listen path in the block', 'orders', undefined, { listenPath: '/orders/' }],
    ['the flag agrees with the block', 'orders', '/orders/', { listenPath: '/orders/' }],
    ['the flag disagrees with the block', 'orders', '/shop/', { problem: '--listen-path /shop/ is not where the configuration\'s apis block serves "orders" (/orders/)' }],
    ['no flag, API not in the block', 'ledger', undefined, { problem: '--listen-path is required: the configuration\'s apis block does not list "ledger"' }],
    ['the flag, API not in the block', 'ledger', '/ledger/', { listenPath: '/ledger/' }],
    ['no flag, several listen paths', 'split', undefined, { problem: '--listen-path is required: the apis block serves "split" at several listen paths (/split/, /other/)' }],
    ['the flag picks one of several', 'split', '/other/', { listenPath: '/other/' }],
  ];
  for (const [name, apiId, flag, expected] of cases) {
    it(name, () => assert.deepEqual(chooseListenPath(config, apiId, flag), expected));
  }

  it('a configuration without an apis block needs the flag', () => {
    assert.deepEqual(chooseListenPath({}, 'orders', undefined), { problem: '--listen-path is required: the configuration\'s apis block does not list "orders"' });
    assert.deepEqual(chooseListenPath({}, 'orders', '/orders/'), { listenPath: '/orders/' });
  });
});
