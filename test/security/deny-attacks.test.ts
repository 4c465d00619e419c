import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAdminHarness, ADMIN_SECRET } from '../support/admin-harness.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { assertErrorShape, expectMinted } from './refusal.js';
import { MAX_DENIES, type Deny } from '../../src/server/deny/deny.js';

/*
 * Attacks on the kill switch's input paths: the admin listener (authentication, where it is served, what it takes)
 * and what a deny's text can do to the clients and logs that echo it. Malformed entries planted in Redis are in
 * test/deny/redis-denies.test.ts (real Redis).
 */
describe('attacks on denies and the admin endpoint', () => {
  const scratch = useScratchDir('deny-attacks-');
  let started: Awaited<ReturnType<typeof startAdminHarness>>;
  let shortSecretFile: string;
  const bearer = `Bearer ${ADMIN_SECRET}`;

  before(async () => {
    started = await startAdminHarness(await scratch.write('admin-secret', ADMIN_SECRET));
    shortSecretFile = await scratch.write('short-secret', 'too-short');
  });
  after(() => started.close());

  it('the admin endpoint refuses a missing, wrong, truncated, extended, padded or non-Bearer secret with 401, and changes nothing', async () => {
    const { admin, h } = started;
    for (const header of [undefined, 'Bearer wrong', `Bearer ${ADMIN_SECRET.slice(0, -1)}`, `Bearer ${ADMIN_SECRET}x`, `Basic ${ADMIN_SECRET}`, `Bearer  ${ADMIN_SECRET}`, 'Bearer ']) {
      const get = admin.get('/admin/v1/denies');
      const post = admin.post('/admin/v1/denies').send({ match: { namespace: 'payments' }, until: '1h', reason: 'x' });
      if (header !== undefined) {
        get.set('Authorization', header);
        post.set('Authorization', header);
      }
      const listed = await get;
      assert.equal(listed.status, 401, `${header}: ${listed.text}`);
      assert.equal(listed.headers['www-authenticate'], 'Bearer realm="token-broker-admin"');
      assert.deepEqual(Object.keys(listed.body), ['error', 'error_description']);
      assert.equal((await post).status, 401);
    }
    assert.equal(h.broker.denies.snapshot.sharedDenies.length, 0, 'nothing was added');
    for (const line of h.logs.raw) assert.equal(line.includes(ADMIN_SECRET), false, 'the admin secret is never logged');
  });

  it('the public listener answers 404 on every admin path, with or without the secret', async () => {
    const { h } = started;
    for (const [method, path] of [['get', '/admin/v1/denies'], ['post', '/admin/v1/denies'], ['delete', '/admin/v1/denies/static-freeze'], ['get', '/ADMIN/v1/denies'], ['get', '/admin/v1/denies/']] as const) {
      const res = await h.http[method](path).set('Authorization', bearer).send({ match: { namespace: 'payments' }, until: '1h', reason: 'x' });
      assertErrorShape(res, { status: 404, error: 'invalid_request', reason: 'not_found' });
    }
    assert.equal(h.broker.denies.snapshot.sharedDenies.length, 0);
  });

  it('a reason with newlines, escapes and bidi overrides reaches client and logs as one printable line', async () => {
    const { admin, h } = started;
    const added = await admin
      .post('/admin/v1/denies')
      .set('Authorization', bearer)
      .send({ match: { serviceAccount: 'argo-evil' }, until: '1h', reason: 'ok\r\n{"level":60,"msg":"forged"}\u001b[2J\u202eevil' })
      .expect(201);
    assert.equal(added.body.deny.reason, 'ok {"level":60,"msg":"forged"} [2J evil');
    const refused = await h.exchange(await h.issuer.projectedToken({ serviceAccount: 'argo-evil' })).expect(403);
    assert.equal(refused.body.error_description, 'An operator has denied tokens to this workload: ok {"level":60,"msg":"forged"} [2J evil');
    assert.doesNotMatch(refused.text, /[\u0000-\u001f\u202e]/);
    assert.equal(h.logs.lines.filter((l) => l.msg === 'forged').length, 0, 'no forged log line');
    await admin.delete(`/admin/v1/denies/${added.body.deny.id}`).set('Authorization', bearer).expect(200);
  });

  it('a facet that looks like a glob is an exact name: it refuses no real workload', async () => {
    const { admin, h } = started;
    const added = await admin.post('/admin/v1/denies').set('Authorization', bearer).send({ match: { namespace: '*' }, until: '1h', reason: 'everything?' }).expect(201);
    await expectMinted(h, async () => h.exchange(await h.issuer.projectedToken({ podUid: 'pod-glob' })));
    await admin.delete(`/admin/v1/denies/${added.body.deny.id}`).set('Authorization', bearer).expect(200);
  });

  it('refuses malformed deny bodies precisely and adds nothing', async () => {
    const { admin, h } = started;
    const post = () => admin.post('/admin/v1/denies').set('Authorization', bearer);
    const cases: [string, () => ReturnType<typeof post>, number, string][] = [
      ['no facet (would match everything)', () => post().send({ match: {}, until: '1h', reason: 'x' }), 400, 'invalid_deny'],
      ['an unknown facet', () => post().send({ match: { pod: 'x' }, until: '1h', reason: 'x' }), 400, 'invalid_deny'],
      ['an unknown field', () => post().send({ match: { namespace: 'a' }, until: '1h', reason: 'x', id: 'chosen' }), 400, 'invalid_deny'],
      ['a facet that is an object', () => post().send({ match: { namespace: { $ne: '' } }, until: '1h', reason: 'x' }), 400, 'invalid_deny'],
      ['no duration', () => post().send({ match: { namespace: 'a' }, reason: 'x' }), 400, 'invalid_deny'],
      ['a duration past 30 days', () => post().send({ match: { namespace: 'a' }, until: '9999d', reason: 'x' }), 400, 'invalid_deny'],
      ['an empty reason', () => post().send({ match: { namespace: 'a' }, until: '1h', reason: '\n' }), 400, 'invalid_deny'],
      ['a JSON array', () => post().send([{ match: { namespace: 'a' } }]), 400, 'invalid_deny'],
      ['broken JSON', () => post().set('Content-Type', 'application/json').send('{"match":'), 400, 'invalid_deny'],
      ['a form body', () => post().type('form').send({ until: '1h' }), 415, 'unsupported_media_type'],
      ['a body over 16 KiB', () => post().send({ match: { namespace: 'a' }, until: '1h', reason: 'x'.repeat(20_000) }), 413, 'request_too_large'],
    ];
    for (const [what, send, status, error] of cases) {
      const res = await send();
      assert.equal(res.status, status, `${what}: ${res.text}`);
      assert.equal(res.body.error, error, what);
    }
    assert.equal(h.broker.denies.snapshot.sharedDenies.length, 0);
    await admin.delete('/admin/v1/denies/..%2F..%2Fetc').set('Authorization', bearer).expect(404);
  });

  it('a huge deny list is refused past the bound: 409, and the exchange path stays an in-memory scan of at most MAX_DENIES', async () => {
    const { admin, h } = started;
    const base: Omit<Deny, 'id'> = { match: { namespace: 'filler' }, until: h.clock.now() + 3_600_000, reason: 'filler', createdAt: h.clock.now(), createdBy: 'test' };
    for (let i = 0; i < MAX_DENIES; i++) assert.equal(await h.broker.denyStore.add({ ...base, id: `filler-${i}`, match: { namespace: `filler-${i}` } }, h.clock.now()), 'added');
    const refused = await admin.post('/admin/v1/denies').set('Authorization', bearer).send({ match: { namespace: 'one-more' }, until: '1h', reason: 'x' }).expect(409);
    assert.equal(refused.body.error, 'too_many_denies');
    await h.broker.refreshDenies();
    assert.equal(h.broker.denies.snapshot.sharedDenies.length, MAX_DENIES);
    await expectMinted(h, async () => h.exchange(await h.issuer.projectedToken({ podUid: 'pod-many' })));
    for (let i = 0; i < MAX_DENIES; i++) await h.broker.denyStore.remove(`filler-${i}`);
    await h.broker.refreshDenies();
  });

  it('an admin secret shorter than 32 characters makes the endpoint refuse everything (503), without logging it', async () => {
    const weak = await startAdminHarness(shortSecretFile);
    try {
      const res = await weak.admin.get('/admin/v1/denies').set('Authorization', 'Bearer too-short').expect(503);
      assert.equal(res.body.error, 'admin_unavailable');
      for (const line of weak.h.logs.raw) assert.equal(line.includes('too-short'), false);
    } finally {
      await weak.close();
    }
  });
});
