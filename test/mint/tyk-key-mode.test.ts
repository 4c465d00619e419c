import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { startStandInTyk, type StandInTyk } from '../fakes/stand-in-tyk.js';
import { TOKEN_TYPE_ACCESS_TOKEN } from '../../src/server/protocol.js';

/** tokens.format: tyk-key — the broker creates Tyk keys through the Gateway REST API instead of signing JWTs. */
describe('tokens.format: tyk-key', () => {
  let tyk: StandInTyk;
  let h: Harness;
  let dir: string;

  before(async () => {
    tyk = await startStandInTyk({ secret: 'gateway-secret-for-tests' });
    for (const id of ['payments-read', 'payments-write', 'status-read']) tyk.addPolicy({ id, name: id, org_id: 'acme', active: true });
    dir = mkdtempSync(join(tmpdir(), 'tb-tyk-'));
    writeFileSync(join(dir, 'secret'), 'gateway-secret-for-tests\n');
    h = await startHarness({
      config: () => ({
        tokens: { audience: 'tyk', allowedAudiences: ['tyk', 'tyk-internal'], defaultTtlSeconds: 600, maxTtlSeconds: 3600, format: 'tyk-key' },
        tyk: { gatewayUrl: tyk.url, secretFile: join(dir, 'secret'), orgId: 'acme', timeoutMs: 2000 },
      }),
    });
  });
  after(async () => {
    await h.close();
    await tyk.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a Tyk key with the granted policies and expiry, and returns it as an access_token', async () => {
    const res = await h.exchange(await h.issuer.projectedToken()).expect(200);
    assert.equal(res.body.issued_token_type, TOKEN_TYPE_ACCESS_TOKEN);
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.expires_in, 300);
    assert.equal(res.body.scope, 'payments-read payments-write status-read');
    const created = tyk.createdKeys.at(-1);
    assert.ok(created !== undefined);
    assert.equal(res.body.access_token, created.key);
    assert.deepEqual(created.applyPolicies, ['payments-read', 'payments-write', 'status-read']);
    assert.equal(created.orgId, 'acme');
    assert.equal(created.alias, 'system:serviceaccount:payments:argo-runner');
    assert.equal(created.expires, Math.floor(h.clock.now() / 1000) + 300);
  });

  it('caches the key like a JWT: the same workload gets the same key without a second Gateway call', async () => {
    const subject = await h.issuer.projectedToken({ podUid: 'tyk-cache-pod' });
    const before = tyk.requestCount('/tyk/keys/create');
    const first = await h.exchange(subject).expect(200);
    const second = await h.exchange(subject).expect(200);
    assert.equal(second.body.access_token, first.body.access_token);
    assert.equal(tyk.requestCount('/tyk/keys/create'), before + 1);
  });

  it('audits the key by its SHA-256 and never logs the key or the Gateway secret', async () => {
    const res = await h.exchange(await h.issuer.projectedToken({ podUid: 'tyk-audit-pod' })).expect(200);
    const key: string = res.body.access_token;
    const audit = h.logs.lines.filter((line) => line.audit === true && line.accessTokenSha256 === createHash('sha256').update(key).digest('base64url'));
    assert.equal(audit.length, 1);
    for (const raw of h.logs.raw) {
      assert.equal(raw.includes(key), false, 'the key is not logged');
      assert.equal(raw.includes('gateway-secret-for-tests'), false, 'the secret is not logged');
    }
  });

  it('answers 503 tyk_unavailable, and issues nothing, when the Gateway refuses or is down', async () => {
    const auditsBefore = h.logs.lines.filter((line) => line.audit === true).length;
    tyk.removePolicy('status-read'); // the Gateway answers 400: a policy in apply_policies does not exist
    const refused = await h.exchange(await h.issuer.projectedToken({ podUid: 'tyk-refused-pod' }));
    assert.equal(refused.status, 503);
    assert.deepEqual(
      { error: refused.body.error, reason: refused.body.reason },
      { error: 'temporarily_unavailable', reason: 'tyk_unavailable' },
    );
    assert.equal(refused.headers['retry-after'], '5');
    tyk.addPolicy({ id: 'status-read', name: 'status-read', org_id: 'acme', active: true });

    tyk.setDown(true);
    try {
      const down = await h.exchange(await h.issuer.projectedToken({ podUid: 'tyk-down-pod' }));
      assert.equal(down.status, 503);
      assert.equal(down.body.reason, 'tyk_unavailable');
      assert.equal('access_token' in down.body, false);
    } finally {
      tyk.setDown(false);
    }
    assert.equal(h.logs.lines.filter((line) => line.audit === true).length, auditsBefore, 'no audit record: nothing was issued');
  });

  it('refuses a configuration with tokens.format tyk-key and no tyk block', async () => {
    const { validateConfig } = await import('../../src/server/config/validate-config.js');
    const result = validateConfig({
      server: { publicUrl: 'https://broker.test' },
      issuers: [{ name: 'c', issuer: 'https://c.test', audiences: ['a'] }],
      tokens: { format: 'tyk-key' },
      rules: [{ name: 'r', policies: ['p'] }],
    });
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.problems.some((p) => p.path === 'tyk' && /tyk-key/.test(p.message)));
  });
});
