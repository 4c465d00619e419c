import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { buildTykClassicApiDefinition } from '../../src/tools/tyk-kit/tyk-classic-api-definition.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { buildTykPolicies } from '../../src/tools/tyk-kit/tyk-policies.js';
import { startStandInTyk, type StandInTyk, type StandInTykProxyResult } from '../fakes/stand-in-tyk.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { API_OPTIONS, tokenProfile } from '../tyk/token-profile.js';

/*
 * The stand-in Tyk itself: its REST API, and proxy() applying Tyk's documented JWT rules
 * (/work/shared/reference/tyk-jwt.md) to tokens signed by a loopback "broker" whose JWKS it fetches.
 * Definitions and policies come from src/tools/tyk-kit's generators, as an operator would load them.
 */

interface SigningKeyPair {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function newKey(alg = 'ES256'): Promise<SigningKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}

/** A loopback JWKS at /.well-known/jwks.json, like the broker's, with the published keys under test control. */
interface KeyServer {
  readonly publicUrl: string;
  published: SigningKeyPair[];
  available: boolean;
  close(): Promise<void>;
}

async function startKeyServer(): Promise<KeyServer> {
  const state = { published: [] as SigningKeyPair[], available: true };
  const server: Server = createServer((req, res) => {
    if (!state.available) {
      res.writeHead(503).end();
    } else if (req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: state.published.map((k) => k.publicJwk) }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get published() {
      return state.published;
    },
    set published(keys) {
      state.published = keys;
    },
    get available() {
      return state.available;
    },
    set available(value) {
      state.available = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sign(key: SigningKeyPair, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header } as { alg: string }).sign(key.privateKey);
}

const GRANTABLE = ['payments-read', 'payments-write', 'ledger-write'];
const SUB = 'system:serviceaccount:payments:argo-runner';
const MISSING = { status: 400, body: { error: 'Authorization field missing' } };
const NOT_AUTHORIZED = { status: 403, body: { error: 'Key not authorized' } };

let keys: KeyServer;
let signer: SigningKeyPair;
before(async () => {
  keys = await startKeyServer();
  signer = await newKey();
  keys.published = [signer];
});
after(async () => {
  await keys.close();
});

interface Setup {
  readonly tyk: StandInTyk;
  readonly clock: TestClock;
  /** Claims the broker would mint at the clock's now, with `extra` merged in. */
  claims(extra?: Record<string, unknown>): Record<string, unknown>;
}

type Definition = 'oas' | 'classic' | ((profile: ReturnType<typeof tokenProfile>) => object);

/** A fresh stand-in Tyk with the generated policies and one API (OAS by default) on /orders/. */
async function withTyk(definition: Definition, run: (setup: Setup) => Promise<void>): Promise<void> {
  const clock = createTestClock(Date.parse('2025-01-31T12:00:00Z'));
  const tyk = await startStandInTyk({ now: clock.now });
  try {
    const profile = tokenProfile({ publicUrl: keys.publicUrl });
    for (const policy of buildTykPolicies(GRANTABLE, { apiId: 'orders', apiName: 'Orders', orgId: 'default' })) tyk.addPolicy(policy);
    const def =
      definition === 'oas'
        ? buildTykOasApiDefinition(profile, API_OPTIONS)
        : definition === 'classic'
          ? buildTykClassicApiDefinition(profile, API_OPTIONS)
          : definition(profile);
    await tyk.addApi(def);
    const claims = (extra: Record<string, unknown> = {}) => {
      const now = Math.floor(clock.now() / 1000);
      return { iss: keys.publicUrl, sub: SUB, aud: 'tyk', iat: now, nbf: now, exp: now + 600, jti: 'j1', pol: 'payments-read', scope: 'payments-read payments-write', ...extra };
    };
    await run({ tyk, clock, claims });
  } finally {
    await tyk.close();
  }
}

/** status and body only: what a client of the real gateway would see. */
const seen = (result: StandInTykProxyResult) => ({ status: result.status, body: result.body });

async function admin(tyk: StandInTyk, path: string, init: { method?: string; secret?: string | null; body?: unknown } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.secret !== null) headers['x-tyk-authorization'] = init.secret ?? tyk.secret;
  const response = await fetch(`${tyk.url}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

describe('stand-in Tyk: REST API', () => {
  it('the admin paths need the secret; /hello does not', async () => {
    await withTyk('oas', async ({ tyk }) => {
      const refusal = { status: 403, body: { status: 'error', message: 'Attempted administrative access with invalid or missing key!' } };
      assert.deepEqual(await admin(tyk, '/tyk/policies', { secret: null }), refusal);
      assert.deepEqual(await admin(tyk, '/tyk/apis', { secret: 'wrong' }), refusal);
      const hello = await admin(tyk, '/hello', { secret: null });
      assert.equal(hello.status, 200);
      const body = hello.body as Record<string, unknown>;
      assert.deepEqual([body.status, body.version, body.description], ['pass', 'v5.8.2', 'Tyk GW']);
      assert.equal(tyk.requestCount('/tyk/policies'), 1);
    });
  });

  it('lists policies, every API in classic form, and the Tyk OAS documents', async () => {
    await withTyk('oas', async ({ tyk }) => {
      await tyk.addApi({ ...buildTykClassicApiDefinition(tokenProfile({ publicUrl: keys.publicUrl }), { ...API_OPTIONS, apiId: 'legacy', listenPath: '/legacy/' }) });
      const policies = await admin(tyk, '/tyk/policies');
      assert.deepEqual((policies.body as { id: string }[]).map((p) => p.id), GRANTABLE);
      const apis = (await admin(tyk, '/tyk/apis')).body as Record<string, unknown>[];
      assert.deepEqual(apis.map((a) => [a.api_id, a.is_oas ?? false]), [['orders', true], ['legacy', false]]);
      const jwksUrl = `${keys.publicUrl}/.well-known/jwks.json`;
      assert.deepEqual(apis[0]?.jwt_jwks_uris, [{ url: jwksUrl, cache_timeout: '240s' }]);
      assert.equal(apis[0]?.jwt_signing_method, 'ecdsa');
      const oas = (await admin(tyk, '/tyk/apis/oas')).body as Record<string, unknown>[];
      assert.deepEqual(oas, [buildTykOasApiDefinition(tokenProfile({ publicUrl: keys.publicUrl }), API_OPTIONS)]);
    });
  });

  it('creates keys bound to existing policies, with their expiry; refuses unknown policies', async () => {
    await withTyk('oas', async ({ tyk, clock }) => {
      const expires = Math.floor(clock.now() / 1000) + 600;
      const created = await admin(tyk, '/tyk/keys/create', { method: 'POST', body: { org_id: 'default', apply_policies: ['payments-read'], expires, alias: 'ci-run-1' } });
      assert.equal(created.status, 200);
      const body = created.body as { key: string; status: string; action: string; key_hash: string };
      assert.deepEqual([body.status, body.action], ['ok', 'added']);
      assert.match(body.key, /^default[0-9a-f]{32}$/);
      assert.match(body.key_hash, /^[0-9a-f]{16}$/);
      assert.deepEqual(tyk.createdKeys.map((k) => [k.key, k.applyPolicies, k.expires, k.alias]), [[body.key, ['payments-read'], expires, 'ci-run-1']]);

      const session = await admin(tyk, `/tyk/keys/${body.key}`);
      assert.equal(session.status, 200);
      const fields = session.body as Record<string, unknown>;
      assert.deepEqual([fields.org_id, fields.apply_policies, fields.expires, fields.alias], ['default', ['payments-read'], expires, 'ci-run-1']);
      assert.deepEqual(Object.keys(fields.access_rights as object), ['orders']);

      assert.deepEqual(await admin(tyk, '/tyk/keys/create', { method: 'POST', body: { org_id: 'default', apply_policies: ['payments-read', 'nope'], expires, alias: 'x' } }), {
        status: 400,
        body: { status: 'error', message: 'Failed to create key: policy not found: nope' },
      });
      assert.equal(tyk.createdKeys.length, 1);
      assert.deepEqual(await admin(tyk, '/tyk/keys/defaultunknown'), { status: 404, body: { status: 'error', message: 'Key not found' } });
    });
  });

  it('while down, connections are dropped and proxy rejects', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      tyk.setDown(true);
      await assert.rejects(fetch(`${tyk.url}/hello`));
      await assert.rejects(tyk.proxy('/orders/', await sign(signer, claims())), /down/);
      tyk.setDown(false);
      assert.equal((await admin(tyk, '/hello')).status, 200);
    });
  });
});

describe('stand-in Tyk: proxy() applies Tyk\'s JWT rules', () => {
  it('a broker token on the generated OAS API: 200, session keyed on md5(sub), policy then scope-mapped policies', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      const result = await tyk.proxy('/orders/v1/items', `Bearer ${await sign(signer, claims())}`);
      const sessionKey = createHash('md5').update(SUB).digest('hex');
      assert.deepEqual(result, {
        status: 200,
        body: { api_id: 'orders', identity: SUB, session_key: sessionKey, policies: ['payments-read', 'payments-write'] },
        reason: 'ok',
        detail: 'authorised',
      });
      assert.deepEqual(tyk.sessions.get(sessionKey)?.policies, ['payments-read', 'payments-write']);
    });
  });

  it('no token: 400 Authorization field missing; no API on the path: 404', async () => {
    await withTyk('oas', async ({ tyk }) => {
      assert.deepEqual(seen(await tyk.proxy('/orders/', undefined)), MISSING);
      assert.deepEqual(seen(await tyk.proxy('/orders/', 'Bearer ')), MISSING);
      assert.equal((await tyk.proxy('/ledger/', 'x')).reason, 'no_api');
    });
  });

  it('a Tyk OAS API without the header block reads no token at all', async () => {
    await withTyk(
      (profile) => {
        const def = structuredClone(buildTykOasApiDefinition(profile, API_OPTIONS)) as unknown as { 'x-tyk-api-gateway': { server: { authentication: { securitySchemes: { jwtAuth: Record<string, unknown> } } } } };
        delete def['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth.header;
        return def;
      },
      async ({ tyk, claims }) => {
        assert.deepEqual(seen(await tyk.proxy('/orders/', await sign(signer, claims()))), MISSING);
      },
    );
  });

  it('an ES256 token on an rsa API: 403, unexpected signing method', async () => {
    await withTyk(
      (profile) => ({ ...buildTykClassicApiDefinition(profile, API_OPTIONS), jwt_signing_method: 'rsa' }),
      async ({ tyk, claims }) => {
        const result = await tyk.proxy('/orders/', await sign(signer, claims()));
        assert.deepEqual(seen(result), NOT_AUTHORIZED);
        assert.equal(result.reason, 'unexpected_signing_method');
        assert.equal(result.detail, 'Unexpected signing method: ES256 and not rsa');
      },
    );
  });

  it('kid must be a string', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      for (const header of [{ kid: 42 }, { kid: undefined }]) {
        const result = await tyk.proxy('/orders/', await sign(signer, claims(), header));
        assert.deepEqual([result.status, result.reason], [403, 'kid_not_string']);
      }
    });
  });

  it('an unknown kid never refetches: refused until the cache expires (240 s), then accepted', async () => {
    await withTyk('oas', async ({ tyk, clock, claims }) => {
      const jwksUrl = `${keys.publicUrl}/.well-known/jwks.json`;
      assert.equal(tyk.jwksFetches.get(jwksUrl), 1, 'Tyk OAS APIs prefetch their jwksURIs');
      const next = await newKey();
      keys.published = [signer, next];
      try {
        clock.advance(239);
        const early = await tyk.proxy('/orders/', await sign(next, claims()));
        assert.deepEqual([early.status, early.body, early.reason], [403, { error: 'Key not authorized' }, 'unknown_kid']);
        assert.equal(tyk.jwksFetches.get(jwksUrl), 1);
        // The old key still verifies from the cache meanwhile.
        assert.equal((await tyk.proxy('/orders/', await sign(signer, claims()))).status, 200);
        clock.advance(1);
        assert.equal((await tyk.proxy('/orders/', await sign(next, claims()))).status, 200);
        assert.equal(tyk.jwksFetches.get(jwksUrl), 2);
      } finally {
        keys.published = [signer];
      }
    });
  });

  it('DELETE /tyk/cache/jwks/{apiID} makes a new kid usable at once', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      const next = await newKey();
      keys.published = [signer, next];
      try {
        assert.equal((await tyk.proxy('/orders/', await sign(next, claims()))).reason, 'unknown_kid');
        assert.equal((await admin(tyk, '/tyk/cache/jwks/orders', { method: 'DELETE' })).status, 200);
        assert.equal((await tyk.proxy('/orders/', await sign(next, claims()))).status, 200);
      } finally {
        keys.published = [signer];
      }
    });
  });

  it('a signature by another key under a published kid: 403', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      const impostor = await newKey();
      const result = await tyk.proxy('/orders/', await sign({ ...impostor, kid: signer.kid }, claims()));
      assert.deepEqual([result.status, result.reason], [403, 'bad_signature']);
    });
  });

  it('exp, iat and nbf with the generated 5 s skews; a token without exp passes', async () => {
    await withTyk('oas', async ({ tyk, clock, claims }) => {
      const now = Math.floor(clock.now() / 1000);
      const cases: readonly [Record<string, unknown>, number, unknown][] = [
        [{ exp: now - 4 }, 200, undefined],
        [{ exp: now - 5 }, 401, { error: 'Key not authorized: token has expired' }],
        [{ iat: now + 5 }, 200, undefined],
        [{ iat: now + 6 }, 401, { error: 'Key not authorized: token used before issued' }],
        [{ nbf: now + 5 }, 200, undefined],
        [{ nbf: now + 6 }, 401, { error: 'Key not authorized: token is not valid yet' }],
        [{ exp: undefined }, 200, undefined],
        [{ exp: 'tomorrow' }, 200, undefined],
      ];
      for (const [extra, status, body] of cases) {
        const result = await tyk.proxy('/orders/', await sign(signer, claims(extra)));
        assert.equal(result.status, status, JSON.stringify(extra));
        if (body !== undefined) assert.deepEqual(result.body, body);
      }
    });
  });

  it('policies: claim missing, unknown, of another org, or not granting the API', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      tyk.addPolicy({ id: 'other-org', org_id: 'acme', access_rights: { orders: { api_id: 'orders' } } });
      tyk.addPolicy({ id: 'status-read', org_id: 'default', access_rights: { status: { api_id: 'status' } } });
      const noMatch = { error: 'key not authorized: no matching policy' };
      const cases: readonly [Record<string, unknown>, number, unknown, string][] = [
        [{ pol: undefined }, 403, noMatch, 'no_policy'],
        [{ pol: 'nope' }, 403, noMatch, 'policy_not_found'],
        [{ pol: 'other-org' }, 403, noMatch, 'policy_org_mismatch'],
        [{ pol: 'status-read', scope: 'status-read' }, 403, { error: 'Access to this API has been disallowed' }, 'access_disallowed'],
      ];
      for (const [extra, status, body, reason] of cases) {
        const result = await tyk.proxy('/orders/', await sign(signer, claims(extra)));
        assert.deepEqual([result.status, result.body, result.reason], [status, body, reason], JSON.stringify(extra));
      }
    });
  });

  it('scopes: a string split on spaces or an array; unmapped and missing policies are skipped', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      tyk.removePolicy('payments-write');
      const cases: readonly [unknown, string[]][] = [
        ['payments-read ledger-write', ['payments-read', 'ledger-write']],
        [['ledger-write', 'unmapped', 'payments-write'], ['payments-read', 'ledger-write']],
        ['ledger-write  payments-read', ['payments-read', 'ledger-write']],
      ];
      for (const [scope, policies] of cases) {
        const result = await tyk.proxy('/orders/', await sign(signer, claims({ scope })));
        assert.deepEqual(result.body, { api_id: 'orders', identity: SUB, session_key: createHash('md5').update(SUB).digest('hex'), policies }, JSON.stringify(scope));
      }
    });
  });

  it('Tyk OAS checks iss and aud (v5.10); classic APIs never do', async () => {
    await withTyk('oas', async ({ tyk, claims }) => {
      const badIss = await tyk.proxy('/orders/', await sign(signer, claims({ iss: `${keys.publicUrl}/` })));
      assert.deepEqual([badIss.status, badIss.reason], [401, 'invalid_issuer']);
      const badAud = await tyk.proxy('/orders/', await sign(signer, claims({ aud: ['orders'] })));
      assert.deepEqual([badAud.status, badAud.reason], [401, 'invalid_audience']);
      assert.equal((await tyk.proxy('/orders/', await sign(signer, claims({ aud: ['orders', 'tyk'] })))).status, 200);
    });
    await withTyk('classic', async ({ tyk, claims }) => {
      assert.equal((await tyk.proxy('/orders/', await sign(signer, claims({ iss: 'https://elsewhere', aud: 'nobody' })))).status, 200);
    });
  });

  it('a plain URL in a classic jwt_source works once, then fails (tyk#7461)', async () => {
    await withTyk(
      (profile) => ({ ...buildTykClassicApiDefinition(profile, API_OPTIONS), jwt_source: `${keys.publicUrl}/.well-known/jwks.json` }),
      async ({ tyk, claims }) => {
        const token = await sign(signer, claims());
        assert.equal((await tyk.proxy('/orders/', token)).status, 200);
        const second = await tyk.proxy('/orders/', token);
        assert.deepEqual([seen(second), second.reason], [NOT_AUTHORIZED, 'jwt_source_plain_url']);
      },
    );
  });

  it('a JWKS that cannot be fetched: 403 Key not authorized', async () => {
    await withTyk('classic', async ({ tyk, claims }) => {
      keys.available = false;
      try {
        const result = await tyk.proxy('/orders/', await sign(signer, claims()));
        assert.deepEqual([seen(result), result.reason], [NOT_AUTHORIZED, 'jwks_fetch_failed']);
      } finally {
        keys.available = true;
      }
      // Failures are not cached: the next request fetches again.
      assert.equal((await tyk.proxy('/orders/', await sign(signer, claims()))).status, 200);
    });
  });

  it('client_id/cid/clientId cost an OAuth-client lookup unless the mapping is disabled', async () => {
    await withTyk('classic', async ({ tyk, claims }) => {
      assert.equal((await tyk.proxy('/orders/', await sign(signer, claims({ client_id: 'x' })))).status, 200);
      assert.equal(tyk.oauthClientLookups, 0);
    });
    await withTyk(
      (profile) => ({ ...buildTykClassicApiDefinition(profile, API_OPTIONS), idp_client_id_mapping_disabled: false }),
      async ({ tyk, claims }) => {
        await tyk.proxy('/orders/', await sign(signer, claims({ cid: 'x' })));
        await tyk.proxy('/orders/', await sign(signer, claims()));
        assert.equal(tyk.oauthClientLookups, 1);
      },
    );
  });
});
