import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { startStandInTyk, type StandInTyk } from '../fakes/stand-in-tyk.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { buildTykClassicApiDefinition } from '../../src/tools/tyk-kit/tyk-classic-api-definition.js';
import { buildDescribedTykPolicy } from '../../src/tools/tyk-kit/tyk-policies.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/*
 * Route-level policies end to end: the real broker (its HTTP app on loopback, so the stand-in Tyk fetches its
 * JWKS over HTTP) mints tokens for a read-only and a read-write workload; the Tyk policies are what
 * `token-broker tyk policies` writes from the same configuration's `policies` block; the stand-in gateway
 * decides as Tyk does (allowed_urls by method and path, per-policy rate limit, other API refused).
 */

const POLICIES: NonNullable<BrokerConfigInput['policies']> = {
  'orders-read': {
    apis: [{ apiId: 'orders', apiName: 'Orders', routes: [{ methods: ['GET', 'HEAD'], path: '/orders/{id}$' }, { methods: ['GET'], path: '/orders/$' }] }],
    rate: 3,
    per: 60,
  },
  'orders-write': {
    apis: [
      { apiId: 'orders', apiName: 'Orders', routes: [{ methods: ['GET', 'POST', 'PUT', 'DELETE'], path: '/orders/' }] },
      { apiId: 'ledger', apiName: 'Ledger', routes: [{ methods: ['POST'], path: '/ledger/entries$' }] },
    ],
  },
};

const RULES: BrokerConfigInput['rules'] = [
  { name: 'readers', match: { serviceAccounts: ['report-reader'] }, policies: ['orders-read'] },
  { name: 'writers', match: { serviceAccounts: ['order-writer'] }, policies: ['orders-write'] },
];

/** A loopback server whose handler is bound later: the broker's public URL must be known before it is built. */
async function lateBoundServer(): Promise<{ url: string; bind(handler: (req: IncomingMessage, res: ServerResponse) => void): void; close(): Promise<void> }> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => (handler === undefined ? res.writeHead(503).end() : handler(req, res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bind(next) {
      handler = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function loadPolicies(tyk: StandInTyk, h: Harness): Promise<void> {
  for (const [id, spec] of Object.entries(h.config.policies ?? {})) tyk.addPolicy(buildDescribedTykPolicy(id, spec, 'default'));
}

const API = { name: 'Orders', orgId: 'default', upstreamUrl: 'http://orders.test:8080', jwksCacheSeconds: 240 } as const;

for (const format of ['oas', 'classic'] as const) {
  describe(`route-level policies through the stand-in Tyk: JWT, ${format} API definitions`, () => {
    let brokerServer: Awaited<ReturnType<typeof lateBoundServer>>;
    let h: Harness;
    let tyk: StandInTyk;

    before(async () => {
      brokerServer = await lateBoundServer();
      h = await startHarness({ config: () => ({ server: { port: 8080, publicUrl: brokerServer.url }, rules: RULES, policies: POLICIES }) });
      brokerServer.bind((req, res) => h.broker.app(req, res));
      tyk = await startStandInTyk({ now: h.clock.now });
      await loadPolicies(tyk, h);
      for (const api of [
        { apiId: 'orders', listenPath: '/orders/' },
        { apiId: 'ledger', listenPath: '/ledger/' },
        { apiId: 'inventory', listenPath: '/inventory/' },
      ]) {
        const options = { ...API, ...api, name: api.apiId };
        await tyk.addApi(format === 'oas' ? buildTykOasApiDefinition(h.config, options) : buildTykClassicApiDefinition(h.config, options));
      }
    });
    after(async () => {
      await tyk.close();
      await h.close();
      await brokerServer.close();
    });

    async function tokenFor(serviceAccount: string): Promise<string> {
      const res = await h.exchange(await h.issuer.projectedToken({ namespace: 'shop', serviceAccount, podUid: `${serviceAccount}-${format}` })).expect(200);
      return res.body.access_token as string;
    }

    it('orders-read: 200 on GET /orders/1, 403 "Access to this resource has been disallowed" on DELETE /orders/1', async () => {
      const token = await tokenFor('report-reader');
      const get = await tyk.proxy('/orders/1', token, 'GET');
      assert.equal(get.status, 200, get.detail);
      assert.deepEqual('policies' in get.body && get.body.policies, ['orders-read']);
      const del = await tyk.proxy('/orders/1', token, 'DELETE');
      assert.deepEqual({ status: del.status, body: del.body, reason: del.reason }, { status: 403, body: { error: 'Access to this resource has been disallowed' }, reason: 'resource_disallowed' });
      // `{id}$` is one path segment: a deeper path is not opened, nor is a method the route does not list.
      assert.equal((await tyk.proxy('/orders/1/lines', token, 'GET')).status, 403);
      assert.equal((await tyk.proxy('/orders/', token, 'POST')).status, 403);
    });

    it('orders-read on an API not in the policy: 403 "Access to this API has been disallowed"', async () => {
      const token = await tokenFor('report-reader');
      for (const path of ['/ledger/entries', '/inventory/1']) {
        const other = await tyk.proxy(path, token, 'GET');
        assert.deepEqual({ status: other.status, body: other.body }, { status: 403, body: { error: 'Access to this API has been disallowed' } }, path);
      }
    });

    it('orders-write: DELETE /orders/1 and POST /ledger/entries (two APIs in one policy), not GET /ledger/entries', async () => {
      const token = await tokenFor('order-writer');
      assert.equal((await tyk.proxy('/orders/1', token, 'DELETE')).status, 200);
      assert.equal((await tyk.proxy('/ledger/entries', token, 'POST')).status, 200);
      assert.equal((await tyk.proxy('/ledger/entries', token, 'GET')).reason, 'resource_disallowed');
      assert.equal((await tyk.proxy('/inventory/1', token, 'GET')).status, 403);
    });

    it('the policy\'s rate limit (3 per 60 s): the fourth request is 429 "Rate limit exceeded", and passes once the window moves', async () => {
      const token = await tokenFor('report-reader');
      // The session is keyed on sub (the service account): move past the window earlier tests used.
      h.clock.advance(61);
      const answers = [];
      for (let i = 0; i < 4; i += 1) answers.push(await tyk.proxy(`/orders/${i}`, token, 'GET'));
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 429]);
      assert.deepEqual(answers[3]?.body, { error: 'Rate limit exceeded' });
      // Refused routes do not count (GranularAccessMiddleware runs before RateLimitAndQuotaCheck).
      assert.equal((await tyk.proxy('/orders/9', token, 'DELETE')).reason, 'resource_disallowed');
      h.clock.advance(61);
      assert.equal((await tyk.proxy('/orders/5', token, 'GET')).status, 200);
    });
  });
}

describe('route-level policies through the stand-in Tyk: tokens.format tyk-key', () => {
  let h: Harness;
  let tyk: StandInTyk;
  let dir: string;

  before(async () => {
    tyk = await startStandInTyk({ secret: 'gateway-secret-for-routes' });
    dir = mkdtempSync(join(tmpdir(), 'tb-tyk-routes-'));
    writeFileSync(join(dir, 'secret'), 'gateway-secret-for-routes\n');
    h = await startHarness({
      config: () => ({
        tokens: { audience: 'tyk', format: 'tyk-key' },
        tyk: { gatewayUrl: tyk.url, secretFile: join(dir, 'secret'), orgId: 'default', timeoutMs: 2000 },
        rules: RULES,
        policies: POLICIES,
      }),
    });
    await loadPolicies(tyk, h);
    // An API on Tyk's own auth tokens: neither JWT nor keyless.
    for (const [apiId, listenPath] of [['orders', '/orders/'], ['inventory', '/inventory/']] as const) {
      await tyk.addApi({ name: apiId, api_id: apiId, org_id: 'default', active: true, use_keyless: false, proxy: { listen_path: listenPath, target_url: 'http://orders.test', strip_listen_path: true } });
    }
  });
  after(async () => {
    await h.close();
    await tyk.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a key created for orders-read: GET /orders/1 200, DELETE /orders/1 403, another API 403, an unknown key 403', async () => {
    const res = await h.exchange(await h.issuer.projectedToken({ namespace: 'shop', serviceAccount: 'report-reader' })).expect(200);
    const key = res.body.access_token as string;
    assert.deepEqual(tyk.createdKeys.at(-1)?.applyPolicies, ['orders-read']);
    assert.equal((await tyk.proxy('/orders/1', key, 'GET')).status, 200);
    const del = await tyk.proxy('/orders/1', key, 'DELETE');
    assert.deepEqual({ status: del.status, body: del.body }, { status: 403, body: { error: 'Access to this resource has been disallowed' } });
    const other = await tyk.proxy('/inventory/1', key, 'GET');
    assert.deepEqual({ status: other.status, body: other.body }, { status: 403, body: { error: 'Access to this API has been disallowed' } });
    const unknown = await tyk.proxy('/orders/1', 'default0123456789abcdef0123456789abcdef', 'GET');
    assert.deepEqual({ status: unknown.status, reason: unknown.reason }, { status: 403, reason: 'key_not_found' });
  });
});
