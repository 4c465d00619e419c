import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { openSigningKeyDirectory, type SigningKeyDirectory } from '../../src/server/mint/signing-key-directory.js';
import { keyMetadataFileName } from '../../src/server/mint/signing-key-set.js';
import { startHarness } from '../support/broker-harness.js';

/*
 * docs/key-rotation.md, "Emergency rotation": a new key whose notBefore is set back past the pending window, written
 * in the same change that deletes the compromised key, signs at once, and the JWKS stops publishing the old key.
 */

const ecPem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

async function writeKey(dir: string, name: string, notBefore: number): Promise<void> {
  await writeFile(join(dir, keyMetadataFileName(name)), JSON.stringify({ notBefore: new Date(notBefore).toISOString() }));
  await writeFile(join(dir, `.${name}.tmp`), ecPem());
  await rename(join(dir, `.${name}.tmp`), join(dir, name));
}

describe('emergency rotation: revoking the active signing key at once', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('the JWKS publishes only the new key, which signs at once; the cache serves no token of the revoked key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'emergency-rotation-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    let directory: SigningKeyDirectory | undefined;
    const h = await startHarness({
      signingKeys: async (clock, logs) => {
        await writeKey(dir, 'compromised.pem', clock.now() - 86_400_000);
        directory = await openSigningKeyDirectory({
          dir,
          algorithm: 'ES256',
          lifecycle: { prePublishSeconds: 300, maxTokenTtlSeconds: 3600, retireMarginSeconds: 60 },
          now: clock.now,
          logger: logs.logger,
          rescanIntervalMs: 0,
          watch: false,
        });
        return directory;
      },
    });
    cleanup.push(async () => {
      await h.close();
      await directory?.close();
    });
    await h.broker.warmUp();
    assert.ok(directory !== undefined);

    const subject = await h.issuer.projectedToken({ podUid: 'pod-rotation' });
    const before = await h.exchange(subject).expect(200);
    const oldKid = decodeProtectedHeader(before.body.access_token).kid;
    assert.deepEqual((await h.http.get('/.well-known/jwks.json').expect(200)).body.keys.map((k: { kid: string }) => k.kid), [oldKid]);

    // One change: the new key, dated back past prePublishSeconds, in; the compromised key and its metadata out.
    await writeKey(dir, 'replacement.pem', h.clock.now() - 600_000);
    await unlink(join(dir, 'compromised.pem'));
    await unlink(join(dir, keyMetadataFileName('compromised.pem')));
    assert.equal(await directory.rescan(), true);

    const published = (await h.http.get('/.well-known/jwks.json').expect(200)).body.keys.map((k: { kid: string }) => k.kid) as string[];
    assert.equal(published.length, 1);
    assert.notEqual(published[0], oldKid, 'the revoked key is no longer published');
    const after = await h.exchange(subject).expect(200);
    assert.notEqual(after.body.access_token, before.body.access_token, 'the cached token of the revoked key is not served');
    assert.equal(decodeProtectedHeader(after.body.access_token).kid, published[0], 'the new key signs at once');
  });
});
