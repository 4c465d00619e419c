import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { StandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { startClusterHarness, type ClusterHarness } from '../support/cluster-harness.js';
import { expectMinted, expectRefusal } from './refusal.js';

/*
 * Cluster metadata as an attack surface, through the stand-in Kubernetes API (which, unlike a real API server,
 * accepts any label value: the broker must not rely on Kubernetes' own validation). Deleted and re-created pods,
 * pod labels against the trust tiers and namespace-label templates with glob and template metacharacters are
 * covered in test/identity/kubernetes-exchange.test.ts; here: service-account labels fed to a policy template,
 * and a service account re-created under the same name.
 */

const NAMESPACE = 'tenants';
const NO_POLICY = { status: 400, error: 'invalid_request', reason: 'no_matching_rule', description: 'No policy is granted to this workload identity.' } as const;

describe('security: hostile cluster metadata', { timeout: 60_000 }, () => {
  let kube: StandInKubernetes;
  let h: ClusterHarness;

  before(async () => {
    h = await startClusterHarness({
      kubernetes: { podBinding: 'off', cacheSeconds: { namespace: 0, serviceAccount: 0, pod: 0 } },
      config: () => ({
        rules: [
          {
            name: 'team-by-service-account',
            match: { namespaces: [NAMESPACE], serviceAccountSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } },
            policies: ['{serviceAccount.labels.team}-read'],
            allowedPolicies: ['*-read'],
          },
        ],
      }),
    });
    kube = h.kube;
    kube.putNamespace(NAMESPACE);
  });
  after(() => h.close());

  /** A service account on the stand-in with `labels`, and a projected token carrying its UID (as the API server's would). */
  async function tokenForServiceAccount(labels: Record<string, string>, uid?: string): Promise<{ token: string; name: string }> {
    const name = `sa-${randomUUID().slice(0, 8)}`;
    const account = kube.putServiceAccount(NAMESPACE, name, { labels });
    const claims = h.issuer.projectedClaims({ namespace: NAMESPACE, serviceAccount: name });
    const kubernetes = claims['kubernetes.io'] as Record<string, unknown>;
    const token = await h.issuer.sign({ ...claims, 'kubernetes.io': { ...kubernetes, serviceaccount: { name, uid: uid ?? account.metadata.uid } } });
    return { token, name };
  }

  it('baseline: team=payments on the service account grants payments-read', async () => {
    const { token } = await tokenForServiceAccount({ team: 'payments' });
    const res = await expectMinted(h, () => h.exchange(token));
    assert.equal(decodeJwt(String(res.body.access_token)).scope, 'payments-read');
  });

  const hostile: readonly string[] = [
    '*',
    'evil*',
    '?',
    '[a-z]',
    '{namespace}',
    '{serviceAccount.labels.admin}',
    '../admin',
    'admin read',
    'admin\nadmin',
    '$(admin)',
    '%s',
    'a,b',
    'ädmin',
    'x'.repeat(200),
  ];
  for (const team of hostile) {
    it(`team=${JSON.stringify(team.length > 20 ? `${team.slice(0, 20)}...` : team)}: the template yields no plain policy ID, nothing is granted`, async () => {
      const { token } = await tokenForServiceAccount({ team, admin: 'payments' });
      const linesBefore = h.logs.lines.length;
      await expectRefusal(h, () => h.exchange(token), NO_POLICY);
      const line = h.logs.lines.slice(linesBefore).find((l) => l.reason === 'no_matching_rule');
      const verdicts = line?.verdicts as { rule: string; matched: boolean; dropped?: string[] }[];
      assert.equal(verdicts.length, 1);
      assert.equal(verdicts[0]?.matched, true);
      assert.equal(verdicts[0]?.dropped?.length, 1, 'the produced value was dropped');
    });
  }

  it('a service account deleted and re-created under the same name with team=admin: the old token is refused outright (service_account_uid_mismatch), nothing of the new labels', async () => {
    const { token, name } = await tokenForServiceAccount({ team: 'payments' });
    kube.deleteServiceAccount(NAMESPACE, name);
    kube.putServiceAccount(NAMESPACE, name, { labels: { team: 'admin' } });
    await expectRefusal(h, () => h.exchange(token), {
      status: 400,
      error: 'invalid_request',
      reason: 'service_account_uid_mismatch',
      description: 'The service account this subject token was issued to was deleted; one of the same name exists now, but it is another identity.',
    });
  });

  it('a service account deleted: its token is refused (service_account_not_found), whatever rule its name would match', async () => {
    const { token, name } = await tokenForServiceAccount({ team: 'payments' });
    kube.deleteServiceAccount(NAMESPACE, name);
    await expectRefusal(h, () => h.exchange(token), {
      status: 400,
      error: 'invalid_request',
      reason: 'service_account_not_found',
      description: 'The service account this subject token was issued to no longer exists.',
    });
  });
});
