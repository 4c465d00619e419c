import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exitStatusOf, formatCheck, type DoctorCheck } from '../../src/tools/doctor/doctor-check.js';
import { runDoctor, type DoctorOptions } from '../../src/tools/doctor/run-doctor.js';
import { buildTykClassicApiDefinition } from '../../src/tools/tyk-kit/tyk-classic-api-definition.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import type { BrokerConfig } from '../../src/server/config/schema.js';
import { generateTestPki, opensslAvailability, startTlsStandInIssuer } from '../fakes/tls-stand-in-issuer.js';
import { API_OPTIONS, closedPortUrl, startChain, type Chain } from './chain-fixture.js';

/*
 * `runDoctor` against the whole chain on loopback (see chain-fixture.ts): each scenario breaks one link and
 * expects exactly that link's line to say so, and the run's exit status to follow.
 */

let chain: Chain;
before(async () => {
  chain = await startChain();
});
after(async () => {
  await chain.close();
});

function tykOptions(): DoctorOptions {
  return { tyk: { url: chain.tyk.url, secret: chain.tyk.secret } };
}

async function doctor(config: BrokerConfig = chain.config, options: DoctorOptions = tykOptions()): Promise<DoctorCheck[]> {
  return runDoctor(config, { timeoutMs: 3000, ...options });
}

/** `STATUS name` of every line, the shape of a run. */
const shape = (results: readonly DoctorCheck[]) => results.map((r) => `${r.status} ${r.name}`);

const lineOf = (results: readonly DoctorCheck[], name: string) => results.filter((r) => r.name === name).map(formatCheck);

const ALL_OK = [
  'OK issuer test-cluster',
  'OK clock test-cluster',
  'OK signing-keys',
  'OK pre-publish',
  'OK broker-jwks',
  'OK tyk',
  'OK tyk-policies',
  'OK tyk-api orders',
];

describe('runDoctor against the chain', () => {
  it('everything in order: every line OK, exit 0', async () => {
    const results = await doctor();
    assert.deepEqual(shape(results), ALL_OK);
    assert.equal(exitStatusOf(results), 0);
    const jwksUrl = `${chain.publicUrl}/.well-known/jwks.json`;
    assert.deepEqual(lineOf(results, 'broker-jwks'), [`OK   broker-jwks: ${jwksUrl} publishes the active key ${chain.kid} (1 key(s))`]);
    assert.deepEqual(lineOf(results, 'tyk-api orders'), [
      `OK   tyk-api orders: Tyk OAS API "Orders" validates with ${jwksUrl}, ecdsa, header block, policy field pol, 3 of 3 grantable policies grant it`,
    ]);
    assert.deepEqual(lineOf(results, 'issuer test-cluster'), [`OK   issuer test-cluster: 1 key(s) from ${chain.issuer.jwksUri} (${chain.issuer.kid})`]);
    // The admin API was asked with the secret, once per list.
    for (const path of ['/hello', '/tyk/policies', '/tyk/apis', '/tyk/apis/oas']) assert.ok(chain.tyk.requestCount(path) >= 1, path);
  });

  it('onCheck sees every result, in order', async () => {
    const seen: DoctorCheck[] = [];
    const results = await doctor(chain.config, { ...tykOptions(), onCheck: (r) => seen.push(r) });
    assert.deepEqual(seen, results);
  });

  it('a policy the rules grant is missing in Tyk: FAIL naming it, exit 1', async () => {
    chain.tyk.removePolicy('payments-write');
    try {
      const results = await doctor();
      assert.deepEqual(lineOf(results, 'tyk-policies'), [
        'FAIL tyk-policies: policies the rules can grant are missing in Tyk: payments-write (1 of 3); tokens naming them are refused ("no matching policy") -> create them: token-broker tyk policies --config FILE --api-id ID --out DIR, into Tyk\'s policies.policy_path, then reload Tyk',
      ]);
      assert.equal(exitStatusOf(results), 1);
    } finally {
      await chain.resetTyk();
    }
  });

  it('an API with a plain-URL classic jwt_source: FAIL citing tyk#7461, exit 1', async () => {
    const jwksUrl = `${chain.publicUrl}/.well-known/jwks.json`;
    // The same API, now as a hand-written classic definition with the URL pasted in plain.
    await chain.tyk.addApi({ ...buildTykClassicApiDefinition(chain.config, API_OPTIONS), jwt_source: jwksUrl });
    try {
      const results = await doctor();
      assert.deepEqual(lineOf(results, 'tyk-api orders'), [
        `FAIL tyk-api orders: jwt_source is a plain URL (${jwksUrl}): Tyk v5.9+ fails every request after the first with "illegal base64 data" (TykTechnologies/tyk#7461) -> put the base64 of the URL there: ${Buffer.from(jwksUrl).toString('base64')}`,
      ]);
      assert.equal(exitStatusOf(results), 1);
    } finally {
      await chain.resetTyk();
    }
  });

  it('an API of the wrong signing family: FAIL, exit 1', async () => {
    const rsa = structuredClone(buildTykOasApiDefinition(chain.config, API_OPTIONS));
    Object.assign(rsa['x-tyk-api-gateway'].server.authentication.securitySchemes.jwtAuth, { signingMethod: 'rsa' });
    await chain.tyk.addApi(rsa);
    try {
      const results = await runDoctor(chain.config, { timeoutMs: 3000, tyk: { url: chain.tyk.url, secret: chain.tyk.secret, apiId: 'orders' } });
      assert.deepEqual(lineOf(results, 'tyk-api orders'), [
        'FAIL tyk-api orders: signing method is "rsa" but the broker signs ES256 ("ecdsa"): Tyk refuses every token ("Unexpected signing method") -> set signingMethod to "ecdsa"',
      ]);
      assert.equal(exitStatusOf(results), 1);
    } finally {
      await chain.resetTyk();
    }
  });

  it('the issuer is down: FAIL on its line, exit 1', async () => {
    chain.issuer.setAvailable(false);
    try {
      const results = await doctor();
      const [line] = lineOf(results, 'issuer test-cluster');
      assert.match(line ?? '', /^FAIL issuer test-cluster: discovery at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration failed: .*HTTP 503/);
      assert.match(line ?? '', / -> check that the broker can reach the issuer: its URL \(discoveryUrl, jwksUri\), caFile and bearerTokenFile$/);
      assert.equal(exitStatusOf(results), 1);
    } finally {
      chain.issuer.setAvailable(true);
    }
  });

  it('the broker\'s JWKS is unreachable: FAIL asking whether it runs, exit 1', async () => {
    const publicUrl = await closedPortUrl();
    const config = chain.configWith((input) => ({ ...input, server: { ...input.server, publicUrl } }));
    const results = await doctor(config, {});
    assert.deepEqual(lineOf(results, 'broker-jwks'), [
      `FAIL broker-jwks: cannot fetch ${publicUrl}/.well-known/jwks.json (connection refused) -> is the broker running and publicUrl right?`,
    ]);
    assert.equal(exitStatusOf(results), 1);
  });

  it('a pre-publish window shorter than Tyk\'s cache: WARN, exit 0', async () => {
    const config = chain.configWith((input) => ({ ...input, signing: { ...input.signing, prePublishSeconds: 100 } }));
    const results = await doctor(config);
    assert.deepEqual(lineOf(results, 'pre-publish'), [
      'WARN pre-publish: signing.prePublishSeconds 100 s vs Tyk\'s JWKS cache (signing.tykJwksCacheSeconds) 240 s: a new key can sign before Tyk has fetched it, and Tyk refuses its tokens ("Key not authorized") until its cached JWKS expires -> set signing.prePublishSeconds above 240 plus the time a Secret update takes to reach every replica',
    ]);
    // The API's own cacheTimeout (240s) is seen to outlast the window too.
    assert.deepEqual(shape(results.filter((r) => r.name === 'tyk-api orders')), ['WARN tyk-api orders']);
    assert.equal(results.some((r) => r.status === 'FAIL'), false, results.map(formatCheck).join('\n'));
    assert.equal(exitStatusOf(results), 0);
  });

  it('the issuer\'s clock a minute away: FAIL; ten seconds: WARN', async () => {
    // The Date header has whole seconds: the measured skew is the shift within about a second (plus latency).
    const measured = (line: string, pattern: RegExp) => Number(pattern.exec(line)?.[1] ?? Number.NaN);
    const far = lineOf(await doctor(chain.config, { now: () => Date.now() - 60_000 }), 'clock test-cluster')[0] ?? '';
    const ahead = /^FAIL clock test-cluster: the issuer's clock is (\d+(?:\.\d)?) s ahead of the broker's, more than its clockSkewSeconds \(30\): /;
    assert.match(far, ahead);
    const farSeconds = measured(far, ahead);
    assert.ok(farSeconds >= 59 && farSeconds <= 62, far);
    const nearLine = lineOf(await doctor(chain.config, { now: () => Date.now() + 10_000 }), 'clock test-cluster')[0] ?? '';
    const behind = /^WARN clock test-cluster: the issuer's clock is (\d+(?:\.\d)?) s behind the broker's \(tolerated up to 30 s/;
    assert.match(nearLine, behind);
    const nearSeconds = measured(nearLine, behind);
    assert.ok(nearSeconds >= 8 && nearSeconds <= 11, nearLine);
  });

  it('a wrong gateway secret: FAIL, and the secret is never printed', async () => {
    const secret = `wrong-${randomUUID()}`;
    const results = await doctor(chain.config, { tyk: { url: chain.tyk.url, secret } });
    assert.deepEqual(lineOf(results, 'tyk-admin'), [
      'FAIL tyk-admin: Tyk refused the secret (HTTP 403 on its REST API) -> check that --tyk-secret-file holds the gateway secret (tyk.conf "secret", TYK_GW_SECRET)',
    ]);
    const text = results.map(formatCheck).join('\n');
    assert.equal(text.includes(secret), false);
    assert.equal(text.includes(chain.tyk.secret), false);
  });

  it('Tyk down: one FAIL for the gateway, no further Tyk lines', async () => {
    chain.tyk.setDown(true);
    try {
      const results = await doctor();
      assert.deepEqual(shape(results).slice(5), ['FAIL tyk']);
      assert.match(lineOf(results, 'tyk')[0] ?? '', /^FAIL tyk: cannot reach http:\/\/127\.0\.0\.1:\d+\/hello \(.+\) -> is --tyk-url right and the gateway running\?$/);
    } finally {
      chain.tyk.setDown(false);
    }
  });

  it('a static jwksFile: read and judged, no clock line', async () => {
    const file = join(chain.workDir, 'issuer-jwks.json');
    const response = await fetch(chain.issuer.jwksUri);
    await writeFile(file, await response.text());
    const config = chain.configWith((input) => ({ ...input, issuers: input.issuers.map((issuer) => ({ ...issuer, jwksFile: file })) }));
    const results = await doctor(config, {});
    assert.deepEqual(lineOf(results, 'issuer test-cluster'), [`OK   issuer test-cluster: 1 key(s) from ${file} (${chain.issuer.kid})`]);
    assert.deepEqual(lineOf(results, 'clock test-cluster'), []);
    const missing = chain.configWith((input) => ({ ...input, issuers: input.issuers.map((issuer) => ({ ...issuer, jwksFile: join(chain.workDir, 'nope.json') })) }));
    assert.match(lineOf(await doctor(missing, {}), 'issuer test-cluster')[0] ?? '', /^FAIL issuer test-cluster: cannot use jwksFile .*nope\.json: cannot read .*nope\.json \(ENOENT\)/);
  });

  it('an issuer that accepts but never answers: FAIL within the bound', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const config = chain.configWith((input) => ({ ...input, issuers: input.issuers.map((issuer) => ({ ...issuer, issuer: url })) }));
      const started = Date.now();
      const results = await runDoctor(config, { timeoutMs: 300 });
      assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
      assert.match(lineOf(results, 'issuer test-cluster')[0] ?? '', /^FAIL issuer test-cluster: /);
      assert.deepEqual(lineOf(results, 'clock test-cluster'), []);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('signing.keysDir without keys: FAIL naming the directory', async () => {
    const config = chain.configWith((input) => ({ ...input, signing: { ...input.signing, keysDir: chain.workDir } }));
    const results = await doctor(config, {});
    assert.match(lineOf(results, 'signing-keys')[0] ?? '', /^FAIL signing-keys: .*no PKCS#8 PEM private keys/);
    // Without the keys, the broker's JWKS can only be described, not judged.
    assert.match(lineOf(results, 'broker-jwks')[0] ?? '', /^WARN broker-jwks: .* serves 1 key\(s\); the keys directory could not be read/);
  });
});

describe('runDoctor through the broker\'s issuer fetch: CA bundle and bearer token', () => {
  const openssl = opensslAvailability();
  it('trusts the configured CA and sends the token file; a rejected token is a FAIL naming HTTP 401', { skip: openssl.ok || process.env.CI === 'true' ? false : `needs the openssl CLI: ${openssl.reason}` }, async () => {
    const pki = generateTestPki();
    const token = `sa-${randomUUID()}`;
    const tls = await startTlsStandInIssuer({ pki, expectedBearer: token, now: Date.now, audience: 'tyk-token-broker' });
    try {
      const tokenFile = join(chain.workDir, 'sa-token');
      await writeFile(tokenFile, `${token}\n`);
      const config = chain.configWith((input) => ({
        ...input,
        issuers: [{ name: 'in-cluster', issuer: tls.issuer, audiences: ['tyk-token-broker'], caFile: pki.caFile, bearerTokenFile: tokenFile }],
      }));
      const results = await doctor(config, {});
      assert.deepEqual(shape(results).slice(0, 2), ['OK issuer in-cluster', 'OK clock in-cluster']);
      assert.ok(tls.requests.every((r) => r.authorization === `Bearer ${token}`));

      tls.setExpectedBearer('another-token');
      const refused = await doctor(config, {});
      assert.match(lineOf(refused, 'issuer in-cluster')[0] ?? '', /^FAIL issuer in-cluster: discovery at https:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration failed: .*HTTP 401/);
    } finally {
      await tls.close();
      pki.remove();
    }
  });
});
