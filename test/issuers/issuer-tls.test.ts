import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import supertest from 'supertest';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';
import { defaultConfig, SUBJECT_AUDIENCE } from '../support/broker-harness.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { captureLogs, type LogCapture } from '../support/log-capture.js';
import {
  generateTestPki,
  opensslAvailability,
  startTlsStandInIssuer,
  type SeenRequest,
  type TestPki,
  type TlsStandInIssuer,
} from '../fakes/tls-stand-in-issuer.js';

/*
 * An in-cluster issuer as kube-apiserver serves it: HTTPS with a certificate from the cluster's private CA,
 * and discovery and JWKS only for callers presenting a service-account token. The broker must trust exactly
 * the configured CA, send its own (rotating) token, and turn every failure to reach the issuer into
 * 503 temporarily_unavailable without leaking the issuer's address or TLS details to the caller.
 */

const DISCOVERY = '/.well-known/openid-configuration';
const JWKS = '/openid/v1/jwks';
const NOT_LOADED = 'The broker cannot load its keys for this issuer yet; retry shortly.';
const UNAVAILABLE_BODY = { error: 'temporarily_unavailable', error_description: NOT_LOADED, reason: 'issuer_unavailable' };

interface Scenario {
  readonly server: TlsStandInIssuer;
  readonly broker: Broker;
  readonly clock: TestClock;
  readonly logs: LogCapture;
  readonly tokenFile: string;
  exchange(subjectToken: string): supertest.Test;
}

interface ScenarioOptions {
  /** The CA file the broker trusts; undefined: none configured (the system store only). */
  readonly caFile: string | undefined;
  /** What the bearer token file holds (kubelet files have no newline; a trailing one must be trimmed). */
  readonly fileToken: string;
  /** The token the stand-in accepts; defaults to the file's token. */
  readonly serverToken?: string;
  /** The configured issuer; defaults to the stand-in's exact issuer. */
  readonly issuer?: (baseUrl: string) => string;
  /** Configure jwksUri, so discovery is skipped. */
  readonly jwksUri?: boolean;
}

function requireOpenssl(): { run: boolean; skip?: string } {
  const availability = opensslAvailability();
  if (availability.ok) return { run: true };
  if (process.env.CI === 'true') return { run: false };
  return { run: false, skip: `${availability.reason}; the TLS issuer tests generate their CA with it` };
}

/** Registers the suite, or (without openssl) a failing test in CI and a skipped suite elsewhere. */
function tlsSuite(name: string, body: () => void): void {
  const openssl = requireOpenssl();
  if (openssl.run) {
    describe(name, body);
  } else if (openssl.skip === undefined) {
    describe(name, () => {
      it('needs the openssl CLI', () => {
        const availability = opensslAvailability();
        assert.fail(`CI=true but the openssl CLI is unusable: ${availability.ok ? 'unknown' : availability.reason}. Install openssl in the CI image.`);
      });
    });
  } else {
    describe(name, { skip: openssl.skip }, body);
  }
}

tlsSuite('in-cluster issuer over HTTPS with a private CA and a bearer token', () => {
  let pki: TestPki;
  const open: Scenario[] = [];

  before(() => {
    pki = generateTestPki();
  });
  afterEach(async () => {
    for (const scenario of open.splice(0)) {
      await scenario.broker.close();
      await scenario.server.close();
    }
  });
  after(() => {
    pki.remove();
  });

  async function startScenario(options: ScenarioOptions): Promise<Scenario> {
    const clock = createTestClock();
    const server = await startTlsStandInIssuer({
      pki,
      expectedBearer: options.serverToken ?? options.fileToken.trim(),
      now: clock.now,
      audience: SUBJECT_AUDIENCE,
    });
    const tokenFile = join(pki.dir, `broker-token-${randomUUID()}`);
    writeFileSync(tokenFile, options.fileToken);
    const issuerUrl = options.issuer?.(server.baseUrl) ?? server.issuer;
    const base = defaultConfig(issuerUrl);
    const [issuerInput] = base.issuers;
    assert.ok(issuerInput !== undefined);
    const validation = validateConfig({
      ...base,
      issuers: [
        {
          ...issuerInput,
          bearerTokenFile: tokenFile,
          ...(options.caFile !== undefined && { caFile: options.caFile }),
          ...(options.jwksUri === true && { jwksUri: server.jwksUri }),
        },
      ],
    });
    if (!validation.ok) throw new Error(`test config invalid: ${JSON.stringify(validation.problems)}`);
    const logs = captureLogs();
    const signingKeys = staticSigningKeySet([await generateSigningKey(validation.config.signing.algorithm, clock.now())]);
    const broker = createBroker(validation.config, { logger: logs.logger, signingKeys, now: clock.now });
    const http = supertest(broker.app);
    const scenario: Scenario = {
      server,
      broker,
      clock,
      logs,
      tokenFile,
      exchange: (subjectToken) =>
        http
          .post('/token')
          .type('form')
          .send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken }),
    };
    open.push(scenario);
    return scenario;
  }

  const seen = (path: string, authorization: string | undefined, status: number): SeenRequest => ({ path, authorization, status });

  /** The response must be the exact 503 body and tell the caller nothing about the issuer's address or TLS. */
  function assertUnavailable(res: supertest.Response, server: TlsStandInIssuer): void {
    assert.equal(res.status, 503);
    assert.deepEqual(res.body, UNAVAILABLE_BODY);
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(res.headers['cache-control'], 'no-store');
    const text = res.text;
    const port = new URL(server.baseUrl).port;
    for (const leak of ['127.0.0.1', port, 'https://', 'BEGIN CERTIFICATE', 'certificate', 'self-signed', 'self signed', 'Unauthorized', 'Status']) {
      assert.equal(text.includes(leak), false, `the response must not contain ${JSON.stringify(leak)}: ${text}`);
    }
  }

  /** What the operator reads: each failed key set fetch is logged with the underlying reason. */
  function fetchFailures(s: Scenario): string[] {
    return s.logs.lines.filter((line) => line.msg === 'issuer key set fetch failed' && line.issuer === 'test-cluster').map((line) => String(line.error));
  }

  it('with caFile and bearerTokenFile: 200, and discovery and JWKS both saw "Bearer <file content, trimmed>"', async () => {
    const token = `broker-sa-${randomUUID()}`;
    const s = await startScenario({ caFile: pki.caFile, fileToken: `${token}\n` });
    const subject = await s.server.sign(s.server.projectedClaims());

    const res = await s.exchange(subject);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.issued_token_type, TOKEN_TYPE_JWT);
    assert.equal(typeof res.body.access_token, 'string');
    assert.deepEqual(s.server.requests, [seen(DISCOVERY, `Bearer ${token}`, 200), seen(JWKS, `Bearer ${token}`, 200)]);

    // Keys are cached: a second exchange with the same kid fetches nothing.
    const again = await s.exchange(await s.server.sign(s.server.projectedClaims({ serviceAccount: 'argo-deployer' })));
    assert.equal(again.status, 200, again.text);
    assert.equal(s.server.requests.length, 2);
    assert.deepEqual(fetchFailures(s), []);
    assert.equal(s.logs.raw.join('\n').includes(token), false, 'the broker\'s own token is never logged');
  });

  it('re-reads the bearer token file on every fetch: a new kid after the cool-down is fetched with the rotated token', async () => {
    const first = `broker-sa-${randomUUID()}`;
    const s = await startScenario({ caFile: pki.caFile, fileToken: first });
    assert.equal((await s.exchange(await s.server.sign(s.server.projectedClaims()))).status, 200);

    // The kubelet rotates the broker's token in place; the API server now accepts only the new one.
    const second = `broker-sa-${randomUUID()}`;
    writeFileSync(s.tokenFile, second);
    s.server.setExpectedBearer(second);
    await s.server.rotateKey();
    s.clock.advance(31);

    const res = await s.exchange(await s.server.sign(s.server.projectedClaims()));
    assert.equal(res.status, 200, res.text);
    // The discovered jwks_uri is kept; only the key set is fetched again, with the new token.
    assert.deepEqual(s.server.requests, [
      seen(DISCOVERY, `Bearer ${first}`, 200),
      seen(JWKS, `Bearer ${first}`, 200),
      seen(JWKS, `Bearer ${second}`, 200),
    ]);
  });

  it('re-reads the bearer token file on an explicit refresh', async () => {
    const first = `broker-sa-${randomUUID()}`;
    const s = await startScenario({ caFile: pki.caFile, fileToken: first });
    const issuer = s.broker.issuers.all[0];
    assert.ok(issuer !== undefined);
    await issuer.keys.refresh();

    const second = `broker-sa-${randomUUID()}`;
    writeFileSync(s.tokenFile, `${second}\n`);
    s.server.setExpectedBearer(second);
    await issuer.keys.refresh();

    assert.deepEqual(s.server.requests, [
      seen(DISCOVERY, `Bearer ${first}`, 200),
      seen(JWKS, `Bearer ${first}`, 200),
      seen(JWKS, `Bearer ${second}`, 200),
    ]);
    assert.equal((await s.exchange(await s.server.sign(s.server.projectedClaims()))).status, 200);
  });

  it('without caFile the private CA is not trusted: 503 issuer_unavailable, and the token never reaches the server', async () => {
    const s = await startScenario({ caFile: undefined, fileToken: `broker-sa-${randomUUID()}` });
    const subject = await s.server.sign(s.server.projectedClaims());

    assertUnavailable(await s.exchange(subject), s.server);
    // After the retry back-off the broker tries again, and fails the same way: never a 200.
    s.clock.advance(3);
    assertUnavailable(await s.exchange(subject), s.server);

    // The handshake failed, so no HTTP request (and no bearer token) was ever sent.
    assert.deepEqual(s.server.requests, []);
    assert.equal(s.broker.issuers.all[0]?.keys.loaded, false);
    // The operator, unlike the caller, learns why: the server's certificate does not chain to a trusted CA.
    const failures = fetchFailures(s);
    assert.equal(failures.length, 2);
    for (const failure of failures) {
      assert.match(failure, /^discovery at https:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration failed: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/);
    }
  });

  it('with caFile naming a different CA: 503 issuer_unavailable, and the token never reaches the server', async () => {
    const s = await startScenario({ caFile: pki.otherCaFile, fileToken: `broker-sa-${randomUUID()}` });
    assertUnavailable(await s.exchange(await s.server.sign(s.server.projectedClaims())), s.server);
    assert.deepEqual(s.server.requests, []);
    assert.equal(fetchFailures(s).length, 1);
    assert.match(fetchFailures(s)[0] ?? '', /\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/);
  });

  it('with a wrong bearer token: the issuer\'s 401 on discovery becomes 503 issuer_unavailable, not a client error', async () => {
    const s = await startScenario({ caFile: pki.caFile, fileToken: 'stale-token', serverToken: `broker-sa-${randomUUID()}` });
    assertUnavailable(await s.exchange(await s.server.sign(s.server.projectedClaims())), s.server);
    assert.deepEqual(s.server.requests, [seen(DISCOVERY, 'Bearer stale-token', 401)]);
    assert.deepEqual(fetchFailures(s), [`discovery at ${s.server.discoveryUrl} failed: unexpected HTTP response status code (HTTP 401)`]);
    assert.equal(s.logs.raw.join('\n').includes('stale-token'), false, 'the broker\'s own token is never logged');
  });

  it('with a wrong bearer token and a configured jwksUri: the JWKS 401 becomes 503 issuer_unavailable', async () => {
    const s = await startScenario({ caFile: pki.caFile, fileToken: 'stale-token', serverToken: `broker-sa-${randomUUID()}`, jwksUri: true });
    assertUnavailable(await s.exchange(await s.server.sign(s.server.projectedClaims())), s.server);
    assert.deepEqual(s.server.requests, [seen(JWKS, 'Bearer stale-token', 401)]);
    assert.deepEqual(fetchFailures(s), ['JWKS answered HTTP 401']);
  });

  it('the discovered issuer must equal the configured one: a trailing slash in the configuration gives 503 and no token', async () => {
    const s = await startScenario({ caFile: pki.caFile, fileToken: `broker-sa-${randomUUID()}`, issuer: (baseUrl) => `${baseUrl}/` });
    const configured = `${s.server.baseUrl}/`;
    assert.equal(s.broker.issuers.all[0]?.config.issuer, configured);
    // The token names the configured issuer, so the broker gets as far as discovery.
    const res = await s.exchange(await s.server.sign(s.server.projectedClaims({ iss: configured })));
    assertUnavailable(res, s.server);
    assert.equal('access_token' in res.body, false);
    // Discovery answered, named https://127.0.0.1:PORT (no slash), and the broker stopped before the JWKS.
    assert.deepEqual(
      s.server.requests.map((r) => r.path),
      [DISCOVERY],
    );
    assert.deepEqual(fetchFailures(s), [
      `discovery at ${s.server.discoveryUrl} names issuer "${s.server.baseUrl}", expected "${configured}" exactly`,
    ]);
  });
});
