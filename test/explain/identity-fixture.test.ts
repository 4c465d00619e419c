import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { parse } from 'yaml';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { FIXTURE_POD_UID, parseIdentityFixture, resolveIdentityFixture, type FixtureResolution } from '../../src/tools/explain/identity-fixture.js';
import type { BrokerConfig, BrokerConfigInput } from '../../src/server/config/schema.js';

const ISSUER_URL = 'https://cluster-a.example';

function config(overrides: Partial<BrokerConfigInput> = {}): BrokerConfig {
  const result = validateConfig(
    {
      server: { publicUrl: 'https://token-broker.test' },
      issuers: [
        { name: 'cluster-a', issuer: ISSUER_URL, audiences: ['tyk-token-broker'], kubernetes: { enabled: true } },
        { name: 'no-kube', issuer: 'https://no-kube.example', audiences: ['tyk-token-broker'] },
      ],
      rules: [
        { name: 'by-namespace', match: { namespaces: ['payments'] }, policies: ['payments-read'] },
        { name: 'by-labels', match: { issuers: ['cluster-a'], namespaceSelector: { matchLabels: { team: 'payments' } } }, policies: ['team-read'] },
      ],
      ...overrides,
    },
    { requireKeysDir: false },
  );
  if (!result.ok) throw new Error(`test config invalid: ${JSON.stringify(result.problems)}`);
  return result.config;
}

function resolve(document: unknown, cfg: BrokerConfig = config()): FixtureResolution {
  const parsed = parseIdentityFixture(document);
  assert.ok(parsed.ok, `fixture invalid: ${JSON.stringify(parsed)}`);
  return resolveIdentityFixture(parsed.fixture, cfg, compileRules(cfg.rules));
}

function identityOf(resolution: FixtureResolution) {
  assert.equal(resolution.kind, 'identity', JSON.stringify(resolution));
  return resolution.kind === 'identity' ? resolution : assert.fail();
}

describe('parseIdentityFixture: precise problems with paths', () => {
  const cases: readonly { name: string; document: unknown; problems: { path: string; message: string }[] }[] = [
    {
      name: 'an unknown key',
      document: { issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'runner', labels: {} },
      problems: [{ path: 'labels', message: 'unknown key' }],
    },
    {
      name: 'the shorthand without a service account',
      document: { issuer: 'cluster-a', namespace: 'payments' },
      problems: [{ path: 'serviceAccount', message: 'required (or give the full token claims under claims)' }],
    },
    {
      name: 'claims and shorthand together',
      document: { issuer: 'cluster-a', claims: { sub: 'x' }, namespace: 'payments' },
      problems: [{ path: 'namespace', message: 'give either claims or the shorthand (namespace, serviceAccount, pod, podUid), not both' }],
    },
    {
      name: 'a pod UID without a pod',
      document: { issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'runner', podUid: 'u' },
      problems: [{ path: 'podUid', message: 'needs pod' }],
    },
    {
      name: 'a label value that is not a string (YAML true unquoted)',
      document: { issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'runner', serviceAccountLabels: { enabled: true } },
      problems: [{ path: 'serviceAccountLabels.enabled', message: 'expected string, received boolean' }],
    },
    {
      name: 'no issuer',
      document: { namespace: 'payments', serviceAccount: 'runner' },
      problems: [{ path: 'issuer', message: 'expected string, received undefined' }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(parseIdentityFixture(c.document), { ok: false, problems: c.problems });
    });
  }

  it('prefixes paths with where the fixture sits in its file', () => {
    assert.deepEqual(parseIdentityFixture({ issuer: 'cluster-a', namespace: 'payments' }, ['cases', 3, 'identity']), {
      ok: false,
      problems: [{ path: 'cases[3].identity.serviceAccount', message: 'required (or give the full token claims under claims)' }],
    });
  });
});

describe('resolveIdentityFixture: the identity an exchange would judge', () => {
  it('the shorthand becomes the claims of a projected token', () => {
    const { identity, notes } = identityOf(resolve({ issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'runner', pod: 'p-1', namespaceLabels: { team: 'payments' } }));
    assert.deepEqual(identity, {
      issuerName: 'cluster-a',
      issuer: ISSUER_URL,
      subject: 'system:serviceaccount:payments:runner',
      namespace: 'payments',
      serviceAccount: 'runner',
      podName: 'p-1',
      podUid: FIXTURE_POD_UID,
      claims: {
        iss: ISSUER_URL,
        sub: 'system:serviceaccount:payments:runner',
        aud: ['tyk-token-broker'],
        'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'runner' }, pod: { name: 'p-1', uid: FIXTURE_POD_UID } },
      },
      // Pod binding is enforced by default, so the pod is read: its labels are there, empty.
      cluster: { namespaceLabels: { team: 'payments' }, podLabels: {}, podAnnotations: {} },
    });
    assert.deepEqual(notes, ['offline: Kubernetes metadata is the fixture\'s, and pod binding assumes the pod is live']);
  });

  it('full claims: iss is filled in; a foreign iss is a problem', () => {
    const claims = { sub: 'system:serviceaccount:payments:runner', 'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'runner' }, pod: { name: 'p', uid: 'u' } } };
    assert.equal(identityOf(resolve({ issuer: 'cluster-a', claims })).identity.claims.iss, ISSUER_URL);
    assert.deepEqual(resolve({ issuer: 'cluster-a', claims: { ...claims, iss: 'https://elsewhere.example' } }), {
      kind: 'problems',
      problems: [{ path: 'claims.iss', message: `must be "${ISSUER_URL}" (issuer "cluster-a"), or be left out` }],
    });
  });

  it('an unknown issuer name is a problem in the fixture', () => {
    assert.deepEqual(resolve({ issuer: 'cluster-z', namespace: 'payments', serviceAccount: 'runner' }), {
      kind: 'problems',
      problems: [{ path: 'issuer', message: 'no issuer is named "cluster-z" in the configuration (issuers: cluster-a, no-kube)' }],
    });
  });

  it('claims the exchange would refuse are refused with its reason code', () => {
    const refused = resolve({ issuer: 'cluster-a', claims: { sub: 'system:serviceaccount:payments:runner' } });
    assert.equal(refused.kind, 'refused');
    assert.equal(refused.kind === 'refused' && refused.error.code, 'missing_claim');
    const mismatch = resolve({
      issuer: 'cluster-a',
      claims: { sub: 'system:serviceaccount:payments:other', 'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'runner' } } },
    });
    assert.equal(mismatch.kind === 'refused' && mismatch.error.code, 'malformed_token');
  });

  it('pod binding: a token bound to no pod, and a pod labelled completed, are refused', () => {
    const unbound = resolve({ issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'runner' });
    assert.equal(unbound.kind === 'refused' && unbound.error.code, 'not_pod_bound');
    const completed = resolve({
      issuer: 'cluster-a',
      namespace: 'payments',
      serviceAccount: 'runner',
      pod: 'p',
      podLabels: { 'workflows.argoproj.io/completed': 'true' },
    });
    assert.equal(completed.kind === 'refused' && completed.error.code, 'workflow_completed');
  });

  it('without pod binding and without rules reading the pod, pod labels are not read: ignored with a note', () => {
    const cfg = config({ issuers: [{ name: 'cluster-a', issuer: ISSUER_URL, audiences: ['tyk-token-broker'], kubernetes: { enabled: true, podBinding: 'off' } }] });
    const { identity, notes } = identityOf(
      resolve({ issuer: 'cluster-a', namespace: 'payments', serviceAccount: 'runner', serviceAccountLabels: { a: 'b' }, podLabels: { x: 'y' } }, cfg),
    );
    assert.deepEqual(identity.cluster, { namespaceLabels: {} });
    assert.deepEqual(notes, [
      'the broker would not read serviceAccountLabels, podLabels for this workload (no rule needs them, or it has no pod): ignored',
      'offline: Kubernetes metadata is the fixture\'s, and pod binding assumes the pod is live',
    ]);
  });

  it('an issuer without Kubernetes: no labels at all, and no pod binding', () => {
    const { identity, notes } = identityOf(resolve({ issuer: 'no-kube', namespace: 'payments', serviceAccount: 'runner', namespaceLabels: { team: 'payments' } }));
    assert.equal(identity.cluster, undefined);
    assert.deepEqual(notes, ['issuer "no-kube" has no Kubernetes API enabled, so the broker reads no labels: the fixture\'s namespaceLabels were ignored']);
  });
});

describe('the fixtures in test/fixtures/identities', () => {
  it('every one is a valid fixture for config/broker.example.yaml', async () => {
    const dir = new URL('../fixtures/identities/', import.meta.url);
    const files = (await readdir(dir)).filter((name) => name.endsWith('.yaml')).sort();
    assert.deepEqual(files, [
      'completed-step.yaml',
      'default-service-account.yaml',
      'eks-ci.yaml',
      'nightly-settlement.yaml',
      'payments-runner.yaml',
      'team-analytics.yaml',
    ]);
    const example = validateConfig(parse(await readFile(new URL('../../config/broker.example.yaml', import.meta.url), 'utf8')));
    assert.ok(example.ok);
    const rules = compileRules(example.config.rules);
    for (const file of files) {
      const parsed = parseIdentityFixture(parse(await readFile(new URL(file, dir), 'utf8')));
      assert.ok(parsed.ok, `${file}: ${JSON.stringify(parsed)}`);
      assert.notEqual(resolveIdentityFixture(parsed.fixture, example.config, rules).kind, 'problems', file);
    }
  });
});
