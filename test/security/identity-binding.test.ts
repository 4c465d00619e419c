import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startHarness, SUBJECT_AUDIENCE, type Harness } from '../support/broker-harness.js';
import type { StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { startClusterHarness, type ClusterHarness } from '../support/cluster-harness.js';
import { projectedClaimsFor, startRawIssuer, type RawIssuer } from './raw-issuer.js';
import { rsaKey, signRs256, startKeyServer, type KeyServer } from './key-server.js';
import { auditCount, expectMinted, expectRefusal } from './refusal.js';

/*
 * Issue 14: no token ever speaks for a workload that was not verified, whatever the issuer kind, the cache or the
 * key fetch. Each describe is one attack that the broker used to lose; each case asserts the exact refusal (or the
 * exact minted claims) and what was or was not minted.
 */

const CI_ISSUER = 'https://ci.example.test';
const NO_POLICY = { status: 400, error: 'invalid_request', reason: 'no_matching_rule', description: 'No policy is granted to this workload identity.' } as const;
const KEYS_UNAVAILABLE = {
  status: 503,
  error: 'temporarily_unavailable',
  reason: 'issuer_unavailable',
  description: 'The broker cannot load its keys for this issuer yet; retry shortly.',
} as const;
const BAD_SIGNATURE = { status: 400, error: 'invalid_request', reason: 'bad_signature', description: 'The subject token\'s signature does not verify with its issuer\'s key.' } as const;

describe('security: an oidc issuer\'s kubernetes.io claim is not a Kubernetes fact', { timeout: 60_000 }, () => {
  let h: Harness;
  let ci: RawIssuer;

  before(async () => {
    ci = await startRawIssuer({ issuer: CI_ISSUER, alg: 'RS256' });
    h = await startHarness({
      config: (issuerUrl) => ({
        issuers: [
          { name: 'test-cluster', issuer: issuerUrl, audiences: [SUBJECT_AUDIENCE], kind: 'kubernetes', clockSkewSeconds: 30 },
          { name: 'ci', issuer: CI_ISSUER, audiences: [SUBJECT_AUDIENCE], kind: 'oidc', jwksFile: ci.jwksFile },
        ],
        tokens: { audience: 'tyk', subject: '{issuer}:{sub}', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
        rules: [
          // The rule of the attack: it names no issuer, so it used to apply to the CI issuer's tokens too.
          { name: 'payments-by-namespace', match: { namespaces: ['payments'] }, policies: ['payments-read'] },
          { name: 'ci-builds', match: { issuers: ['ci'], claims: { '/repository': 'acme/*' } }, policies: ['builds-read'] },
        ],
      }),
    });
    await h.broker.warmUp();
  });
  after(async () => {
    await h.close();
    await ci.close();
  });

  const ciToken = (sub: string, kubernetes: unknown, extra: Record<string, unknown> = {}) => {
    const iat = Math.floor(h.clock.now() / 1000);
    return ci.sign({ iss: CI_ISSUER, sub, aud: SUBJECT_AUDIENCE, iat, nbf: iat, exp: iat + 600, 'kubernetes.io': kubernetes, ...extra });
  };

  it('baseline: a projected token of the kubernetes issuer in payments is granted payments-read', async () => {
    const token = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner' });
    const res = await expectMinted(h, () => h.exchange(token));
    assert.equal(decodeJwt(String(res.body.access_token)).scope, 'payments-read');
  });

  it('a CI token claiming kubernetes.io namespace payments gets nothing from the namespace rule: no_matching_rule', async () => {
    const token = ciToken('repo:evil/fork', { namespace: 'payments', serviceaccount: { name: 'argo-runner' } });
    await expectRefusal(h, () => h.exchange(token), NO_POLICY);
  });

  it('two CI tokens with one sub and other kubernetes.io namespaces: the token names neither namespace', async () => {
    const first = await expectMinted(h, () => h.exchange(ciToken('repo:acme/orders', { namespace: 'payments' }, { repository: 'acme/orders' })));
    const audits = auditCount(h);
    const second = await h.exchange(ciToken('repo:acme/orders', { namespace: 'billing' }, { repository: 'acme/orders' }));
    assert.equal(second.status, 200, second.text);
    for (const res of [first, second]) {
      const claims = decodeJwt(String(res.body.access_token));
      assert.deepEqual(claims.workload, { issuer: 'ci' }, 'only what the CI issuer vouches for');
      assert.equal(claims.sub, 'ci:repo:acme/orders');
    }
    // The same verified identity: the cached token is right for it, and no second record was written.
    assert.equal(second.body.access_token, first.body.access_token);
    assert.equal(auditCount(h), audits);
    const audit = h.logs.lines.filter((line) => line.audit === true).at(-1) as Record<string, unknown>;
    assert.equal(audit.namespace, undefined, 'the audit record names no namespace either');
  });

  for (const namespace of ['payments-\nadmin', 'payments\n', 'Payments', 'payments/../admin']) {
    it(`a projected token of the kubernetes issuer with namespace ${JSON.stringify(namespace)}: malformed_token, naming the claim`, async () => {
      const claims = h.issuer.projectedClaims({ namespace: 'payments', serviceAccount: 'argo-runner' });
      const kubernetes = claims['kubernetes.io'] as Record<string, unknown>;
      const token = await h.issuer.sign({ ...claims, sub: `system:serviceaccount:${namespace}:argo-runner`, 'kubernetes.io': { ...kubernetes, namespace } });
      await expectRefusal(h, () => h.exchange(token), {
        status: 400,
        error: 'invalid_request',
        reason: 'malformed_token',
        description: 'The subject token\'s "kubernetes.io.namespace" is not a Kubernetes name (an RFC 1123 DNS label).',
      });
    });
  }
});

describe('security: the minted-token cache never serves a stale workflow in sub', { timeout: 60_000 }, () => {
  let h: ClusterHarness;
  let kube: StandInKubernetes;

  before(async () => {
    h = await startClusterHarness({
      kubernetes: { podBinding: 'enforce', cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 } },
      config: () => ({ tokens: { audience: 'tyk', subject: 'argo:{namespace}:{workflow}', defaultTtlSeconds: 600, maxTtlSeconds: 3600 } }),
    });
    kube = h.kube;
    kube.putNamespace('payments');
    kube.putServiceAccount('payments', 'argo-runner');
  });
  after(() => h.close());

  it('a pod relabelled to another workflow gets a new token naming that workflow, not the cached one', async () => {
    const pod = kube.putArgoPod({ namespace: 'payments', workflow: 'orders-sync-a1b2c', serviceAccountName: 'argo-runner' });
    const token = await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-runner', podName: pod.metadata.name, podUid: pod.metadata.uid });
    const first = await expectMinted(h, () => h.exchange(token));
    assert.equal(decodeJwt(String(first.body.access_token)).sub, 'argo:payments:orders-sync-a1b2c');

    // Same pod (same UID), new workflow label: the pod lookup is not cached (cacheSeconds.pod 0).
    kube.putPod('payments', String(pod.metadata.name), {
      uid: pod.metadata.uid,
      serviceAccountName: 'argo-runner',
      labels: { ...pod.metadata.labels, 'workflows.argoproj.io/workflow': 'orders-sync-zzzzz' },
      ...(pod.metadata.annotations !== undefined && { annotations: pod.metadata.annotations }),
    });
    const second = await expectMinted(h, () => h.exchange(token));
    const claims = decodeJwt(String(second.body.access_token));
    assert.equal(claims.sub, 'argo:payments:orders-sync-zzzzz');
    assert.notEqual(claims.jti, decodeJwt(String(first.body.access_token)).jti);
  });
});

describe('security: a discovered jwks_uri does not choose where keys and the broker\'s credential go', { timeout: 60_000 }, () => {
  let issuer: KeyServer;
  let elsewhere: KeyServer;
  let dir: string;
  let bearerTokenFile: string;
  const signer = rsaKey('k1');
  const BEARER = 'Bearer broker-own-service-account-token';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tb-security-jwks-'));
    bearerTokenFile = join(dir, 'token');
    await writeFile(bearerTokenFile, 'broker-own-service-account-token\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A fresh key server for the issuer and one elsewhere, and a broker trusting the first. */
  async function start(issuerExtra: Record<string, unknown> = {}): Promise<Harness> {
    issuer = await startKeyServer();
    elsewhere = await startKeyServer();
    issuer.keys = [signer.jwk];
    elsewhere.keys = [signer.jwk];
    return startHarness({
      config: () => ({
        issuers: [{ name: 'test-cluster', issuer: issuer.url, audiences: [SUBJECT_AUDIENCE], kind: 'kubernetes', bearerTokenFile, ...issuerExtra }],
      }),
    });
  }
  async function stop(h: Harness): Promise<void> {
    await h.close();
    await issuer.close();
    await elsewhere.close();
  }
  const tokenOf = (h: Harness) => signRs256(signer.privateKey, projectedClaimsFor(issuer.url, h.clock.now()), 'k1');
  const logged = (h: Harness, text: string) => h.logs.lines.some((line) => typeof line.error === 'string' && line.error.includes(text));

  it('baseline: discovery and JWKS on the issuer\'s origin, both with the broker\'s credential', async () => {
    const h = await start();
    try {
      await expectMinted(h, () => h.exchange(tokenOf(h)));
      assert.deepEqual(issuer.requests, [
        { path: '/.well-known/openid-configuration', authorization: BEARER },
        { path: '/jwks', authorization: BEARER },
      ]);
    } finally {
      await stop(h);
    }
  });

  it('a jwks_uri on another origin is refused: 503, and that origin is never asked (nor sent the credential)', async () => {
    const h = await start();
    try {
      issuer.discovery = { issuer: issuer.url, jwks_uri: `${elsewhere.url}/jwks` };
      await expectRefusal(h, () => h.exchange(tokenOf(h)), KEYS_UNAVAILABLE);
      assert.deepEqual(elsewhere.requests, []);
      assert.ok(logged(h, `jwks_uri is on ${elsewhere.url}, which is not the issuer's origin`), 'the log says why');
    } finally {
      await stop(h);
    }
  });

  for (const [name, jwksUri, why] of [
    ['plain http on a non-loopback host', 'http://keys.example.test/jwks', 'jwks_uri is plain http on a non-loopback host'],
    ['a file: URL', 'file:///etc/passwd', 'jwks_uri uses file, not https'],
    ['credentials in the URL', 'USERINFO', 'jwks_uri carries credentials'],
    ['not a URL', '/jwks', 'jwks_uri is not an absolute URL'],
  ] as const) {
    it(`a jwks_uri with ${name} is refused before any fetch: 503`, async () => {
      const h = await start();
      try {
        issuer.discovery = { issuer: issuer.url, jwks_uri: jwksUri === 'USERINFO' ? issuer.url.replace('http://', 'http://user:pass@') + '/jwks' : jwksUri };
        await expectRefusal(h, () => h.exchange(tokenOf(h)), KEYS_UNAVAILABLE);
        assert.deepEqual(
          issuer.requests.map((r) => r.path),
          ['/.well-known/openid-configuration'],
          'only discovery was fetched',
        );
        assert.ok(logged(h, why), `the log says: ${why}`);
      } finally {
        await stop(h);
      }
    });
  }

  it('a JWKS over 1 MiB is refused: 503, and the broker keeps serving (it used to crash on an uncaught error)', async () => {
    const h = await start();
    try {
      issuer.keys = [signer.jwk, ...Array.from({ length: 6000 }, (_, i) => ({ kty: 'oct', kid: `pad-${i}`, k: 'x'.repeat(200) }))];
      await expectRefusal(h, () => h.exchange(tokenOf(h)), KEYS_UNAVAILABLE);
      assert.ok(logged(h, 'exceeds 1048576 bytes'));
      const health = await h.http.get('/healthz');
      assert.equal(health.status, 200, 'still alive');
    } finally {
      await stop(h);
    }
  });

  it('a JWKS answering with a redirect is not followed: 503, the target is never asked', async () => {
    const h = await start();
    try {
      issuer.redirectJwksTo = `${elsewhere.url}/jwks`;
      await expectRefusal(h, () => h.exchange(tokenOf(h)), KEYS_UNAVAILABLE);
      assert.deepEqual(elsewhere.requests, []);
      assert.ok(logged(h, 'JWKS answered HTTP 302'));
    } finally {
      await stop(h);
    }
  });
});

describe('security: jwksOrigins lets an issuer publish keys on another configured origin', { timeout: 60_000 }, () => {
  it('discovered jwks_uri on a listed origin: minted, and the credential went to both configured origins', async () => {
    const issuer = await startKeyServer();
    const keyHost = await startKeyServer();
    const dir = await mkdtemp(join(tmpdir(), 'tb-security-origins-'));
    const bearerTokenFile = join(dir, 'token');
    await writeFile(bearerTokenFile, 'broker-own-service-account-token\n');
    const signer = rsaKey('k1');
    keyHost.keys = [signer.jwk];
    issuer.discovery = { issuer: issuer.url, jwks_uri: `${keyHost.url}/jwks` };
    const h = await startHarness({
      config: () => ({
        issuers: [{ name: 'test-cluster', issuer: issuer.url, audiences: [SUBJECT_AUDIENCE], kind: 'kubernetes', bearerTokenFile, jwksOrigins: [keyHost.url] }],
      }),
    });
    try {
      await expectMinted(h, () => h.exchange(signRs256(signer.privateKey, projectedClaimsFor(issuer.url, h.clock.now()), 'k1')));
      assert.deepEqual(keyHost.requests, [{ path: '/jwks', authorization: 'Bearer broker-own-service-account-token' }]);
    } finally {
      await h.close();
      await issuer.close();
      await keyHost.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('security: several keys under one kid, and tokens without a kid', { timeout: 60_000 }, () => {
  let h: Harness;
  let issuer: KeyServer;
  const first = rsaKey('shared');
  const second = rsaKey('shared');
  const unpublished = rsaKey('shared');

  before(async () => {
    issuer = await startKeyServer();
    // A rotation in progress: two keys published under one kid, the newer one second.
    issuer.keys = [first.jwk, second.jwk];
    h = await startHarness({ config: () => ({ issuers: [{ name: 'test-cluster', issuer: issuer.url, audiences: [SUBJECT_AUDIENCE], kind: 'kubernetes' }] }) });
  });
  after(async () => {
    await h.close();
    await issuer.close();
  });

  const claims = (serviceAccount: string) => projectedClaimsFor(issuer.url, h.clock.now(), { serviceAccount });

  it('a token signed by the second key under a shared kid verifies (it used to be bad_signature)', async () => {
    await expectMinted(h, () => h.exchange(signRs256(second.privateKey, claims('by-second'), 'shared')));
  });

  it('a token signed by the first key under the shared kid verifies too', async () => {
    await expectMinted(h, () => h.exchange(signRs256(first.privateKey, claims('by-first'), 'shared')));
  });

  it('a token without kid is checked against every key that fits its algorithm', async () => {
    await expectMinted(h, () => h.exchange(signRs256(second.privateKey, claims('no-kid'), undefined)));
  });

  it('a key the issuer never published, under the shared kid or without kid: bad_signature, and no refetch', async () => {
    const fetches = issuer.requests.filter((r) => r.path === '/jwks').length;
    await expectRefusal(h, () => h.exchange(signRs256(unpublished.privateKey, claims('forged-kid'), 'shared')), BAD_SIGNATURE);
    await expectRefusal(h, () => h.exchange(signRs256(unpublished.privateKey, claims('forged-no-kid'), undefined)), BAD_SIGNATURE);
    assert.equal(issuer.requests.filter((r) => r.path === '/jwks').length, fetches, 'a bad signature does not refetch the key set');
  });
});
