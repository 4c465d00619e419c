import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { useHarness } from '../support/broker-harness.js';

/*
 * The `issuer` label of token_broker_exchanges_total is bounded by the configuration: its values are configured
 * issuer names, or '' when no trusted issuer's key verified the token. Whatever a caller puts in `iss` (another
 * issuer's URL, the configured name itself, a random string, a forged signature over the real issuer's URL), it
 * cannot add a series. Property-tested over arbitrary claims, through a real scrape.
 */

const CONFIGURED = 'test-cluster';

/** The issuer label values of every exchanges sample in a scrape. */
function issuerLabels(exposition: string): Set<string> {
  const values = new Set<string>();
  for (const line of exposition.split('\n')) {
    if (!line.startsWith('token_broker_exchanges_total{')) continue;
    const match = /issuer="((?:[^"\\]|\\.)*)"/.exec(line);
    assert.ok(match !== null, `every sample has an issuer label: ${line}`);
    values.add(match[1] ?? '');
  }
  return values;
}

describe('token_broker_exchanges_total{issuer}', () => {
  const h = useHarness();

  it('an authentic token counts under its issuer\'s configured name, even when refused for its time or audience', async () => {
    await h.exchange(await h.issuer.projectedToken()).expect(200);
    await h.exchange(await h.issuer.projectedToken({ offsetSeconds: -7200, lifetimeSeconds: 600 })).expect(400);
    await h.exchange(await h.issuer.projectedToken({ audience: 'another-service' })).expect(400);
    const samples = (await h.http.get('/metrics').expect(200)).text.split('\n').filter((line) => line.startsWith('token_broker_exchanges_total{'));
    for (const reason of ['ok', 'expired', 'audience_mismatch']) {
      assert.ok(samples.some((line) => line.includes(`reason="${reason}",issuer="${CONFIGURED}"`)), `${reason} under ${CONFIGURED}: ${samples.join('\n')}`);
    }
  });

  it('property: whatever `iss` and signature a caller sends, the label takes only configured names or ""', async () => {
    const iss = fc.oneof(
      fc.constant(h.issuer.issuer),
      fc.constant(CONFIGURED),
      fc.constant(`${h.issuer.issuer}/`),
      fc.webUrl(),
      fc.string({ maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(iss, fc.boolean(), fc.string({ maxLength: 20 }), async (claimedIssuer, forge, namespace) => {
        const claims = { ...h.issuer.projectedClaims({ namespace: namespace === '' ? 'payments' : namespace }), iss: claimedIssuer };
        let token = await h.issuer.sign(claims);
        if (forge) {
          // The caller's claims under some other token's signature.
          const [header, , signature] = (await h.issuer.projectedToken()).split('.');
          token = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
        }
        await h.exchange(token);
        for (const value of issuerLabels((await h.http.get('/metrics').expect(200)).text)) {
          assert.ok(value === CONFIGURED || value === '', `issuer label ${JSON.stringify(value)} for iss ${JSON.stringify(claimedIssuer)}`);
        }
      }),
      { numRuns: 60 },
    );
  });
});
