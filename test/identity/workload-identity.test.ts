import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../src/server/errors.js';
import { identityFromClaims } from '../../src/server/identity/workload-identity.js';
import type { IssuerConfig } from '../../src/server/config/schema.js';

function issuer(kind: IssuerConfig['kind']): IssuerConfig {
  return {
    name: 'cluster-a',
    issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123',
    audiences: ['tyk-token-broker'],
    kind,
    clockSkewSeconds: 30,
    allowInsecureHttp: false,
  };
}

/** A pod-bound projected token's claims, laid out as kube-apiserver does (see reference/kubernetes-argo.md). */
function projected(overrides: Record<string, unknown> = {}, kube: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aud: ['tyk-token-broker'],
    exp: 1767226200,
    iat: 1767225600,
    nbf: 1767225600,
    iss: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123',
    jti: '2f6b0c1e-0000-4000-8000-000000000000',
    'kubernetes.io': {
      namespace: 'ci',
      node: { name: 'ip-10-0-1-23.eu-west-1.compute.internal', uid: 'node-uid' },
      pod: { name: 'orders-sync-x7k2p-call-api-3149217812', uid: '0d8b260e-pod' },
      serviceaccount: { name: 'wf-runner', uid: 'e6a8680e-sa' },
      warnafter: 1767226080,
      ...kube,
    },
    sub: 'system:serviceaccount:ci:wf-runner',
    ...overrides,
  };
}

/** Asserts that identityFromClaims throws a BrokerError with this code and OAuth error. */
function assertRefused(run: () => unknown, code: string, facts?: Record<string, unknown>): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, code);
    assert.equal(error.oauthError, 'invalid_request');
    assert.equal(error.status, 400);
    if (facts !== undefined) assert.deepEqual(error.facts, facts);
    return true;
  });
}

describe('identityFromClaims: kubernetes issuers', () => {
  it('reads namespace, service account, pod and node from a pod-bound token', () => {
    const claims = projected();
    const identity = identityFromClaims(issuer('kubernetes'), claims);
    assert.deepEqual(identity, {
      issuerName: 'cluster-a',
      issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123',
      subject: 'system:serviceaccount:ci:wf-runner',
      namespace: 'ci',
      serviceAccount: 'wf-runner',
      serviceAccountUid: 'e6a8680e-sa',
      podName: 'orders-sync-x7k2p-call-api-3149217812',
      podUid: '0d8b260e-pod',
      nodeName: 'ip-10-0-1-23.eu-west-1.compute.internal',
      claims,
    });
  });

  it('reads the secret of a Secret-bound token, with no pod fields', () => {
    const claims = projected({}, { pod: undefined, node: undefined, secret: { name: 'wf-runner-token', uid: 'secret-uid' } });
    const identity = identityFromClaims(issuer('kubernetes'), claims);
    assert.equal(identity.secretName, 'wf-runner-token');
    assert.equal(identity.podName, undefined);
    assert.equal(identity.podUid, undefined);
    assert.equal(identity.nodeName, undefined);
    assert.equal('podName' in identity, false);
  });

  it('leaves out optional fields that are absent or not objects, and UIDs that are not strings', () => {
    const claims = projected({}, { pod: { uid: 42 }, node: 'not-an-object', serviceaccount: { name: 'wf-runner' } });
    const identity = identityFromClaims(issuer('kubernetes'), claims);
    for (const field of ['podName', 'podUid', 'nodeName', 'serviceAccountUid', 'secretName']) {
      assert.equal(field in identity, false, `${field} is absent`);
    }
    assert.equal(identity.serviceAccount, 'wf-runner');
  });

  it('accepts names at the API server\'s limits: a 63-character namespace, a 253-character dotted service account', () => {
    const namespace = `n${'a'.repeat(61)}z`;
    const serviceAccount = `${'s'.repeat(63)}.${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(61)}`;
    assert.equal(serviceAccount.length, 253);
    const claims = projected({ sub: `system:serviceaccount:${namespace}:${serviceAccount}` }, { namespace, serviceaccount: { name: serviceAccount } });
    const identity = identityFromClaims(issuer('kubernetes'), claims);
    assert.equal(identity.namespace, namespace);
    assert.equal(identity.serviceAccount, serviceAccount);
  });

  /** Names no API server creates, each in the claim where it would be read. Every one is malformed_token. */
  const badNames: readonly string[] = [
    'payments-\nadmin',
    'payments\n',
    'Payments',
    '-payments',
    'payments-',
    'pay ments',
    'payments\u0000',
    'payments/../admin',
    'paymënts',
    '*',
  ];
  for (const bad of badNames) {
    it(`refuses the namespace ${JSON.stringify(bad)} as malformed_token, naming the claim`, () => {
      const claims = projected({ sub: `system:serviceaccount:${bad}:wf-runner` }, { namespace: bad });
      assertRefused(() => identityFromClaims(issuer('kubernetes'), claims), 'malformed_token', { claim: 'kubernetes.io.namespace' });
    });
    it(`refuses the service account ${JSON.stringify(bad)} as malformed_token, naming the claim`, () => {
      const claims = projected({ sub: `system:serviceaccount:ci:${bad}` }, { serviceaccount: { name: bad } });
      assertRefused(() => identityFromClaims(issuer('kubernetes'), claims), 'malformed_token', { claim: 'kubernetes.io.serviceaccount.name' });
    });
  }

  const badOptionalNames: readonly { name: string; kube: Record<string, unknown>; claim: string }[] = [
    { name: 'a namespace of 64 characters', kube: { namespace: 'n'.repeat(64) }, claim: 'kubernetes.io.namespace' },
    { name: 'a dotted namespace (a subdomain, not a label)', kube: { namespace: 'ci.prod' }, claim: 'kubernetes.io.namespace' },
    { name: 'a pod name with a newline', kube: { pod: { name: 'x\ny', uid: 'u' } }, claim: 'kubernetes.io.pod.name' },
    { name: 'an empty pod name', kube: { pod: { name: '', uid: 'u' } }, claim: 'kubernetes.io.pod.name' },
    { name: 'a pod name that is a number', kube: { pod: { name: 42, uid: 'u' } }, claim: 'kubernetes.io.pod.name' },
    { name: 'a pod name of 254 characters', kube: { pod: { name: 'p'.repeat(254), uid: 'u' } }, claim: 'kubernetes.io.pod.name' },
    { name: 'an upper-case node name', kube: { node: { name: 'Node-A' } }, claim: 'kubernetes.io.node.name' },
    { name: 'a Secret name with a slash', kube: { pod: undefined, secret: { name: 'a/b' } }, claim: 'kubernetes.io.secret.name' },
  ];
  for (const r of badOptionalNames) {
    it(`refuses ${r.name} as malformed_token, naming the claim`, () => {
      const kube = r.kube;
      const namespace = typeof kube.namespace === 'string' ? kube.namespace : 'ci';
      const claims = projected({ sub: `system:serviceaccount:${namespace}:wf-runner` }, kube);
      assertRefused(() => identityFromClaims(issuer('kubernetes'), claims), 'malformed_token', { claim: r.claim });
    });
  }

  const refusals: readonly { name: string; claims: Record<string, unknown>; code: string; claim?: string }[] = [
    { name: 'no sub', claims: projected({ sub: undefined }), code: 'missing_claim', claim: 'sub' },
    { name: 'empty sub', claims: projected({ sub: '' }), code: 'missing_claim', claim: 'sub' },
    { name: 'sub not a string', claims: projected({ sub: 42 }), code: 'missing_claim', claim: 'sub' },
    { name: 'no kubernetes.io', claims: projected({ 'kubernetes.io': undefined }), code: 'missing_claim', claim: 'kubernetes.io' },
    { name: 'kubernetes.io not an object', claims: projected({ 'kubernetes.io': 'ci' }), code: 'missing_claim', claim: 'kubernetes.io' },
    { name: 'kubernetes.io an array', claims: projected({ 'kubernetes.io': ['ci'] }), code: 'missing_claim', claim: 'kubernetes.io' },
    { name: 'no namespace', claims: projected({}, { namespace: undefined }), code: 'missing_claim', claim: 'kubernetes.io.namespace' },
    { name: 'empty namespace', claims: projected({}, { namespace: '' }), code: 'missing_claim', claim: 'kubernetes.io.namespace' },
    {
      name: 'no service account',
      claims: projected({}, { serviceaccount: undefined }),
      code: 'missing_claim',
      claim: 'kubernetes.io.serviceaccount.name',
    },
    {
      name: 'service account without a name',
      claims: projected({}, { serviceaccount: { uid: 'x' } }),
      code: 'missing_claim',
      claim: 'kubernetes.io.serviceaccount.name',
    },
    { name: 'sub names another namespace', claims: projected({ sub: 'system:serviceaccount:prod:wf-runner' }), code: 'malformed_token' },
    { name: 'sub names another service account', claims: projected({ sub: 'system:serviceaccount:ci:admin' }), code: 'malformed_token' },
    { name: 'namespace disagrees with sub', claims: projected({}, { namespace: 'prod' }), code: 'malformed_token' },
    { name: 'service account disagrees with sub', claims: projected({}, { serviceaccount: { name: 'admin' } }), code: 'malformed_token' },
    { name: 'sub is not a service-account subject', claims: projected({ sub: 'wf-runner' }), code: 'malformed_token' },
    { name: 'sub with a trailing suffix', claims: projected({ sub: 'system:serviceaccount:ci:wf-runner:extra' }), code: 'malformed_token' },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} with ${r.code}`, () => {
      assertRefused(() => identityFromClaims(issuer('kubernetes'), r.claims), r.code, r.claim === undefined ? undefined : { claim: r.claim });
    });
  }

  it('never puts claim values in the description of a sub mismatch', () => {
    assert.throws(
      () => identityFromClaims(issuer('kubernetes'), projected({ sub: 'system:serviceaccount:secret-ns:secret-sa' })),
      (error: unknown) => error instanceof BrokerError && !error.description.includes('secret-ns') && !error.description.includes('secret-sa'),
    );
  });
});

describe('identityFromClaims: oidc issuers', () => {
  it('needs only sub when there is no kubernetes.io claim', () => {
    const claims = { iss: 'https://token.actions.example', sub: 'repo:acme/orders:ref:refs/heads/main', aud: 'tyk-token-broker' };
    const identity = identityFromClaims(issuer('oidc'), claims);
    assert.deepEqual(identity, {
      issuerName: 'cluster-a',
      issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123',
      subject: 'repo:acme/orders:ref:refs/heads/main',
      claims,
    });
  });

  it('takes no Kubernetes fact from its kubernetes.io claim: nothing it names was checked by an API server', () => {
    const claims = projected({ sub: 'some-other-subject' });
    const identity = identityFromClaims(issuer('oidc'), claims);
    assert.deepEqual(identity, {
      issuerName: 'cluster-a',
      issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE0123',
      subject: 'some-other-subject',
      claims,
    });
    for (const field of ['namespace', 'serviceAccount', 'serviceAccountUid', 'podName', 'podUid', 'nodeName', 'secretName', 'cluster']) {
      assert.equal(field in identity, false, `${field} is absent`);
    }
  });

  it('ignores a partial or hostile kubernetes.io claim instead of refusing the token', () => {
    for (const kube of [{ namespace: 'ci' }, { namespace: 'payments\nadmin' }, 'not-an-object', { serviceaccount: { name: 42 } }]) {
      const identity = identityFromClaims(issuer('oidc'), { sub: 'x', 'kubernetes.io': kube });
      assert.equal('namespace' in identity, false);
      assert.equal('serviceAccount' in identity, false);
      assert.deepEqual(identity.claims['kubernetes.io'], kube, 'the claim itself stays readable by JSON-pointer rules');
    }
  });

  it('still requires sub', () => {
    assertRefused(() => identityFromClaims(issuer('oidc'), { iss: 'https://idp.example' }), 'missing_claim', { claim: 'sub' });
  });
});
