import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/server/config/validate-config.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';
import { checkKubernetesAccess } from '../../src/tools/doctor/kubernetes-access-check.js';
import { permissionName, requiredKubernetesPermissions } from '../../src/server/kubernetes/kubernetes-permissions.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';

/*
 * doctor's Kubernetes check without a cluster: which permissions a configuration needs, and what the check says
 * for each answer. test/kubernetes-real/real-cluster.test.ts runs it against a real API server's
 * SelfSubjectAccessReview.
 */

function config(kubernetes: Record<string, unknown> | undefined, rules: BrokerConfigInput['rules']) {
  const result = validateConfig({
    server: { publicUrl: 'https://token-broker.test' },
    issuers: [{ name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'], kind: 'kubernetes' }],
    signing: { algorithm: 'ES256', keysDir: '/unused' },
    ...(kubernetes !== undefined && { kubernetes }),
    rules,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const BY_NAME = [{ name: 'by-name', match: { namespaces: ['payments'] }, policies: ['payments-read'] }];
const BY_LABELS = [{ name: 'by-labels', match: { namespaceSelector: { matchLabels: { team: 'payments' } } }, policies: ['payments-read'] }];

describe('requiredKubernetesPermissions', () => {
  it('pod binding needs get pods and serviceaccounts; namespace rules get namespaces; tokenreview create tokenreviews', () => {
    const needed = (kubernetes: Record<string, unknown>, rules: BrokerConfigInput['rules']) => {
      const c = config(kubernetes, rules);
      assert.ok(c.kubernetes !== undefined);
      return requiredKubernetesPermissions(c.kubernetes, compileRules(c.rules).needs).map((p) => `${permissionName(p)} <- ${p.neededFor.join(', ')}`);
    };
    assert.deepEqual(needed({ kubeconfig: '/k' }, BY_NAME), ['get pods <- podBinding: enforce', 'get serviceaccounts <- podBinding: enforce']);
    assert.deepEqual(needed({ kubeconfig: '/k', podBinding: 'off' }, BY_NAME), []);
    assert.deepEqual(needed({ kubeconfig: '/k', podBinding: 'off', verification: 'tokenreview' }, BY_LABELS), [
      'get namespaces <- a namespaceSelector rule',
      'create tokenreviews.authentication.k8s.io <- verification: tokenreview',
    ]);
  });
});

describe('checkKubernetesAccess', () => {
  it('OK naming what the credential may do; FAIL naming each missing permission and why it is needed', async () => {
    const c = config({ kubeconfig: '/etc/kubeconfig' }, BY_LABELS);
    const allowed = await checkKubernetesAccess(c, { timeoutMs: 1000, reviewerFor: () => async () => true });
    assert.deepEqual(allowed, [{ status: 'OK', name: 'kubernetes in-cluster', message: '/etc/kubeconfig may get pods, get serviceaccounts, get namespaces in every namespace' }]);
    const asked: string[] = [];
    const denied = await checkKubernetesAccess(c, {
      timeoutMs: 1000,
      reviewerFor: (connection) => async (permission) => {
        asked.push(`${String(connection.kubeconfig)} ${permissionName(permission)}`);
        return permission.resource !== 'pods';
      },
    });
    assert.deepEqual(denied, [
      {
        status: 'FAIL',
        name: 'kubernetes in-cluster',
        message: '/etc/kubeconfig may not get pods (for podBinding: enforce)',
        fix: 'grant what deploy/kubernetes/base/rbac.yaml grants to the broker\'s service account',
      },
    ]);
    assert.deepEqual(asked.sort(), ['/etc/kubeconfig get namespaces', '/etc/kubeconfig get pods', '/etc/kubeconfig get serviceaccounts']);
  });

  it('a kubeconfig that does not load, or an API server that refuses the credential: FAIL, never a throw', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tb-doctor-k8s-'));
    try {
      const broken = join(dir, 'broken.kubeconfig');
      await writeFile(broken, 'apiVersion: v1\nkind: Config\nclusters: [{name: a, cluster: {server: "http://127.0.0.1:1"}}]\ncontexts: [{name: a, context: {cluster: a, user: u}}]\ncurrent-context: a\nusers: [{name: u, user: {}}]\n');
      const [unloadable] = await checkKubernetesAccess(config({ kubeconfig: broken }, BY_NAME), { timeoutMs: 1000 });
      assert.equal(unloadable?.status, 'FAIL');
      assert.match(unloadable?.message ?? '', /^cannot load .*broken\.kubeconfig: Kubernetes API: server http:\/\/127\.0\.0\.1:1 is plain HTTP/);

      const refused = await checkKubernetesAccess(config({ kubeconfig: '/k' }, BY_NAME), {
        timeoutMs: 1000,
        reviewerFor: () => () => Promise.reject(Object.assign(new Error('Unauthorized'), { code: 401 })),
      });
      assert.deepEqual(refused, [
        {
          status: 'FAIL',
          name: 'kubernetes in-cluster',
          message: 'cannot ask the API server with /k: HTTP 401: the API server does not accept this credential (expired or revoked token, wrong user)',
          fix: 'check the kubeconfig\'s server, CA and credential',
        },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('no kubernetes block: no check', async () => {
    assert.deepEqual(await checkKubernetesAccess(config(undefined, BY_NAME), { timeoutMs: 1000 }), []);
  });
});
