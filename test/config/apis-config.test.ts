import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, type ConfigProblem } from '../../src/server/config/validate-config.js';

/** A valid configuration with an `apis` block; each case breaks it in a fresh copy. */
function validInput(): Record<string, any> {
  return {
    server: { publicUrl: 'https://token-broker.example' },
    issuers: [{ name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'] }],
    signing: { keysDir: '/etc/token-broker/keys' },
    rules: [{ name: 'orders', match: { namespaces: ['orders'] }, policies: ['orders-read'] }],
    policies: { 'orders-read': { apis: [{ apiId: 'orders' }] } },
    apis: [{ apiId: 'orders', urls: ['https://gateway.example.com/orders/', 'http://tyk-gateway.tyk.svc:8080/orders/'] }],
  };
}

function problemsOf(mutate: (input: Record<string, any>) => void): readonly ConfigProblem[] {
  const input = validInput();
  mutate(input);
  const result = validateConfig(input);
  assert.equal(result.ok, false, 'expected the configuration to be refused');
  return result.ok ? [] : result.problems;
}

describe('config: apis', () => {
  it('accepts the block, and a configuration without it', () => {
    const result = validateConfig(validInput());
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(result.config.apis, validInput().apis);
    const without = validInput();
    delete without.apis;
    assert.equal(validateConfig(without).ok, true);
  });

  const normalForm = (url: string) => `must be written in normal form: "${url}" (no dot segments, default port or encoded characters)`;
  const cases: readonly { name: string; url: string; message: string }[] = [
    { name: 'relative', url: '/orders/', message: 'must be an absolute URL such as https://gateway.example.com/orders/' },
    { name: 'another scheme', url: 'ftp://gateway.example.com/orders/', message: 'must be an http or https URL' },
    { name: 'userinfo', url: 'https://u:p@gateway.example.com/orders/', message: 'must not carry a user name or password' },
    { name: 'a query', url: 'https://gateway.example.com/orders/?x=1', message: 'must not have a query: Tyk routes on the path alone' },
    { name: 'an empty query', url: 'https://gateway.example.com/orders/?', message: 'must not have a query: Tyk routes on the path alone' },
    { name: 'a fragment', url: 'https://gateway.example.com/orders/#x', message: 'must not have a fragment' },
    {
      name: 'no trailing slash',
      url: 'https://gateway.example.com/orders',
      message: 'must end with the listen path, starting and ending with "/", e.g. https://gateway.example.com/orders/',
    },
    { name: 'a dot segment', url: 'https://gateway.example.com/x/../orders/', message: normalForm('https://gateway.example.com/orders/') },
    { name: 'the default port', url: 'https://gateway.example.com:443/orders/', message: normalForm('https://gateway.example.com/orders/') },
  ];
  for (const c of cases) {
    it(`refuses a URL: ${c.name}`, () => {
      assert.deepEqual(
        problemsOf((input) => {
          input.apis[0].urls = [c.url];
        }),
        [{ path: 'apis[0].urls[0]', message: c.message }],
      );
    });
  }

  it('accepts upper-case scheme and host, matched in lower case', () => {
    const input = validInput();
    input.apis[0].urls = ['HTTPS://Gateway.Example.com/orders/'];
    assert.equal(validateConfig(input).ok, true);
  });

  it('refuses an API listed twice, a URL of two APIs, and apis without policies', () => {
    assert.deepEqual(
      problemsOf((input) => {
        input.apis.push({ apiId: 'orders', urls: ['https://gateway.example.com/orders/v2/'] });
      }),
      [{ path: 'apis[1].apiId', message: 'API "orders" is listed twice; merge its urls into one entry' }],
    );
    assert.deepEqual(
      problemsOf((input) => {
        input.apis.push({ apiId: 'orders-v2', urls: ['https://GATEWAY.example.com/orders/'] });
      }),
      [{ path: 'apis[1].urls[0]', message: 'the same URL is already API "orders"\'s' }],
    );
    assert.deepEqual(
      problemsOf((input) => {
        delete input.policies;
      }),
      [{ path: 'apis', message: 'needs the policies block: it says which policies open each API, and a resource narrows to those' }],
    );
  });

  it('refuses unknown keys and a bad API id', () => {
    assert.deepEqual(
      problemsOf((input) => {
        input.apis[0].listenPath = '/orders/';
        input.apis[0].apiId = 'has space';
      }),
      [
        { path: 'apis[0].apiId', message: 'must be letters, digits, ".", "_" and "-"' },
        { path: 'apis[0].listenPath', message: 'unknown key' },
      ],
    );
  });
});
