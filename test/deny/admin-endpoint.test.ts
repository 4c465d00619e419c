import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startAdminHarness, ADMIN_SECRET } from '../support/admin-harness.js';
import { startStandInTyk, type StandInTyk } from '../fakes/stand-in-tyk.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { metricValue } from '../support/multi-broker.js';

describe('the admin endpoint (JWT mode, no Redis)', () => {
  const scratch = useScratchDir('admin-');
  let started: Awaited<ReturnType<typeof startAdminHarness>>;
  const bearer = `Bearer ${ADMIN_SECRET}`;

  before(async () => {
    started = await startAdminHarness(await scratch.write('admin-secret', `${ADMIN_SECRET}\n`));
  });
  after(() => started.close());

  it('lists the static denies, adds one that the public listener enforces at once, and removes it', async () => {
    const { h, admin } = started;
    const listed = await admin.get('/admin/v1/denies').set('Authorization', bearer).expect(200);
    assert.deepEqual(listed.body.denies.map((d: { id: string; source: string }) => [d.id, d.source]), [['static-freeze', 'static']]);

    const subject = await h.issuer.projectedToken({ podUid: 'pod-admin' });
    const before = await h.exchange(subject).expect(200);

    const added = await admin.post('/admin/v1/denies').set('Authorization', bearer).send({ match: { namespace: 'payments' }, until: '2h', reason: 'INC-3 exfiltration', by: 'carol' }).expect(201);
    assert.equal(added.body.deny.source, 'shared');
    assert.deepEqual(added.body.deny.match, { namespace: 'payments' });
    assert.equal(added.body.deny.createdBy, 'admin:carol');
    assert.equal(added.body.deny.until, new Date(h.clock.now() + 7_200_000).toISOString());
    const refused = await h.exchange(subject).expect(403);
    assert.deepEqual(refused.body, { error: 'access_denied', error_description: 'An operator has denied tokens to this workload: INC-3 exfiltration', reason: 'denied' });
    const audit = h.logs.lines.find((l) => l.audit === true && l.event === 'deny_added');
    assert.equal(audit?.denyId, added.body.deny.id);
    assert.equal(audit?.actor, 'admin:carol');

    const removed = await admin.delete(`/admin/v1/denies/${added.body.deny.id}`).set('Authorization', bearer).expect(200);
    assert.equal(removed.body.removed.id, added.body.deny.id);
    assert.equal((await h.exchange(subject).expect(200)).body.access_token, before.body.access_token);
    await admin.delete(`/admin/v1/denies/${added.body.deny.id}`).set('Authorization', bearer).expect(404);
    await admin.delete('/admin/v1/denies/static-freeze').set('Authorization', bearer).expect(404);

    const metrics = (await h.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_deny_changes_total{change="added"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_deny_changes_total{change="removed"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_denies_active{source="shared"}'), 0);
  });

  it('a jti deny takes that token out of the cache for good: a fresh token is minted, also after the deny ends', async () => {
    const { h, admin } = started;
    const subject = await h.issuer.projectedToken({ podUid: 'pod-jti' });
    const first = await h.exchange(subject).expect(200);
    const jti = JSON.parse(Buffer.from(String(first.body.access_token).split('.')[1] as string, 'base64url').toString('utf8')).jti as string;
    const added = await admin.post('/admin/v1/denies').set('Authorization', bearer).send({ match: { jti }, until: '90s', reason: 'leaked' }).expect(201);
    const second = await h.exchange(subject).expect(200);
    assert.notEqual(second.body.access_token, first.body.access_token);
    h.clock.advance(91);
    assert.equal((await h.exchange(subject).expect(200)).body.access_token, second.body.access_token, 'the revoked token never comes back');
    await admin.delete(`/admin/v1/denies/${added.body.deny.id}`).set('Authorization', bearer).expect(200);
  });
});

describe('the admin endpoint in tyk-key mode', () => {
  const scratch = useScratchDir('admin-tyk-');
  let tyk: StandInTyk;
  let started: Awaited<ReturnType<typeof startAdminHarness>>;

  before(async () => {
    tyk = await startStandInTyk({ secret: 'gateway-secret-for-tests' });
    for (const id of ['payments-read', 'payments-write', 'status-read']) tyk.addPolicy({ id, name: id, org_id: 'acme', active: true });
    const secretFile = await scratch.write('tyk-secret', 'gateway-secret-for-tests\n');
    started = await startAdminHarness(await scratch.write('admin-secret', ADMIN_SECRET), {
      config: () => ({
        tokens: { audience: 'tyk', allowedAudiences: ['tyk'], defaultTtlSeconds: 600, maxTtlSeconds: 3600, format: 'tyk-key' },
        tyk: { gatewayUrl: tyk.url, secretFile, orgId: 'acme', timeoutMs: 2000 },
      }),
    });
  });
  after(async () => {
    await started.close();
    await tyk.close();
  });

  const gatewayKnows = async (key: string) => (await fetch(`${tyk.url}/tyk/keys/${encodeURIComponent(key)}`, { headers: { 'x-tyk-authorization': tyk.secret } })).status === 200;

  it('a deny deletes the matching issued keys from the Gateway, and only those', async () => {
    const { h, admin } = started;
    const denied = (await h.exchange(await h.issuer.projectedToken({ serviceAccount: 'argo-ci', podUid: 'pod-t1' })).expect(200)).body.access_token as string;
    const alsoDenied = (await h.exchange(await h.issuer.projectedToken({ serviceAccount: 'argo-ci', podUid: 'pod-t2' })).expect(200)).body.access_token as string;
    const spared = (await h.exchange(await h.issuer.projectedToken({ serviceAccount: 'argo-runner', podUid: 'pod-t3' })).expect(200)).body.access_token as string;
    assert.ok(await gatewayKnows(denied));

    const added = await admin.post('/admin/v1/denies').set('Authorization', `Bearer ${ADMIN_SECRET}`).send({ match: { namespace: 'payments', serviceAccount: 'argo-ci' }, until: '1h', reason: 'INC-5' }).expect(201);
    assert.deepEqual(added.body.tykKeys, { deleted: 2, failed: 0 });
    assert.deepEqual([...tyk.deletedKeys].sort(), [denied, alsoDenied].sort());
    assert.equal(await gatewayKnows(denied), false);
    assert.equal(await gatewayKnows(alsoDenied), false);
    assert.equal(await gatewayKnows(spared), true);
    const audit = h.logs.lines.find((l) => l.audit === true && l.event === 'deny_added');
    assert.equal(audit?.tykKeysDeleted, 2);
    for (const line of h.logs.raw) assert.equal(line.includes(denied), false, 'a deleted key is never logged');

    // A jti deny (the jti from the token's audit record) deletes that one key; the workload then gets a new one.
    const sha = createHash('sha256').update(spared).digest('base64url');
    const jti = h.logs.lines.find((l) => l.audit === true && l.event === 'token_issued' && l.accessTokenSha256 === sha)?.jti;
    assert.equal(typeof jti, 'string');
    const byJti = await admin.post('/admin/v1/denies').set('Authorization', `Bearer ${ADMIN_SECRET}`).send({ match: { jti }, until: '1h', reason: 'key pasted in chat' }).expect(201);
    assert.deepEqual(byJti.body.tykKeys, { deleted: 1, failed: 0 });
    assert.equal(await gatewayKnows(spared), false);
    const renewed = await h.exchange(await h.issuer.projectedToken({ serviceAccount: 'argo-runner', podUid: 'pod-t3' })).expect(200);
    assert.notEqual(renewed.body.access_token, spared);
    assert.equal(await gatewayKnows(renewed.body.access_token as string), true);
  });
});
