import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tokenCacheKey } from '../../src/server/cache/cache-key.js';
import { mintInputOf } from '../../src/server/mint/access-token-claims.js';
import type { Grant } from '../../src/server/rules/decide-grant.js';
import { ARGO_NODE_ANNOTATION, ARGO_WORKFLOW_LABEL, type WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import { TOKENS_SUB_ONLY } from '../support/tokens-config.js';
import { PAYMENTS_RUNNER_POD } from '../support/workload-identities.js';

const IDENTITY: WorkloadIdentity = {
  ...PAYMENTS_RUNNER_POD,
  claims: { jti: 'subject-jti-1', exp: 1_767_226_200 },
  cluster: { podLabels: { [ARGO_WORKFLOW_LABEL]: 'orders-sync-x7k2p' }, podAnnotations: { [ARGO_NODE_ANNOTATION]: 'orders-sync-x7k2p.call-api' } },
};

const TOKENS = TOKENS_SUB_ONLY;

const PUBLIC_URL = 'https://token-broker.test';
const GRANT: Grant = { identity: IDENTITY, policies: ['payments-read', 'status-read'], audience: 'tyk', ttlSeconds: 300 };
const CONTEXT = { rulesVersion: 'rules-v1', generation: 'kid-1' };

/** The key exactly as the exchange derives it: mint input first, then the key of that input. */
function keyOf(grant: Grant, context = CONTEXT, tokens = TOKENS, publicUrl = PUBLIC_URL): string {
  return tokenCacheKey(mintInputOf(grant, tokens, publicUrl), grant.identity, context);
}

const baseKey = () => keyOf(GRANT);

describe('tokenCacheKey', () => {
  it('is stable for equal inputs built separately', () => {
    const copy: Grant = structuredClone(GRANT);
    assert.equal(keyOf(copy, { ...CONTEXT }), baseKey());
    assert.match(baseKey(), /^[A-Za-z0-9_-]{43}$/, 'a base64url SHA-256');
  });

  it('does not contain the identity in clear', () => {
    const key = baseKey();
    for (const part of ['payments', 'argo-runner', 'cluster-a', IDENTITY.podUid ?? '']) assert.equal(key.includes(part), false);
  });

  it('ignores what the minted token does not say: other subject-token claims, a renewed subject token of the same pod', () => {
    // The service-account UID and the node are verified but not minted: a new subject token of the same pod
    // (new jti, new exp) is served the cached token.
    const renewed: Grant = { ...GRANT, identity: { ...IDENTITY, serviceAccountUid: 'sa-uid-2', nodeName: 'node-b', claims: { jti: 'subject-jti-2', exp: 1_767_229_800 } } };
    assert.equal(keyOf(renewed), baseKey());
  });

  const withPodMetadata = (labels: Record<string, string>, annotations: Record<string, string>): Partial<WorkloadIdentity> => ({
    cluster: { podLabels: labels, podAnnotations: annotations },
  });

  const changes: readonly { name: string; grant?: Partial<Grant>; identity?: Partial<WorkloadIdentity>; context?: Partial<typeof CONTEXT> }[] = [
    { name: 'issuer', identity: { issuer: 'https://cluster-b.example' } },
    { name: 'issuer name', identity: { issuerName: 'cluster-b' } },
    { name: 'subject', identity: { subject: 'system:serviceaccount:payments:argo-deployer' } },
    { name: 'namespace (sub unchanged: an oidc-shaped identity)', identity: { namespace: 'payments-eu' } },
    { name: 'service account (sub unchanged)', identity: { serviceAccount: 'argo-deployer' } },
    { name: 'namespace absent', identity: { namespace: undefined } },
    { name: 'pod uid', identity: { podUid: '0d8b260e-0000-4000-8000-000000000002' } },
    { name: 'pod uid absent', identity: { podUid: undefined } },
    { name: 'pod name', identity: { podName: 'orders-sync-x7k2p-call-api-0000000000' } },
    { name: 'workflow (a relabelled pod)', identity: withPodMetadata({ [ARGO_WORKFLOW_LABEL]: 'orders-sync-other' }, { [ARGO_NODE_ANNOTATION]: 'orders-sync-x7k2p.call-api' }) },
    { name: 'node', identity: withPodMetadata({ [ARGO_WORKFLOW_LABEL]: 'orders-sync-x7k2p' }, { [ARGO_NODE_ANNOTATION]: 'orders-sync-x7k2p.other-step' }) },
    { name: 'pod metadata absent', identity: { cluster: undefined } },
    { name: 'audience', grant: { audience: 'tyk-internal' } },
    { name: 'policies (one more)', grant: { policies: ['payments-read', 'status-read', 'payments-write'] } },
    { name: 'policies (one fewer)', grant: { policies: ['payments-read'] } },
    { name: 'policies (order: the first is the pol claim)', grant: { policies: ['status-read', 'payments-read'] } },
    { name: 'policies (joined differently)', grant: { policies: ['payments-read status-read'] } },
    { name: 'ttl', grant: { ttlSeconds: 301 } },
    { name: 'rules version', context: { rulesVersion: 'rules-v2' } },
    { name: 'minter generation (signing kid)', context: { generation: 'kid-2' } },
  ];
  const changed = (change: (typeof changes)[number]) =>
    keyOf({ ...GRANT, ...change.grant, identity: { ...IDENTITY, ...change.identity } }, { ...CONTEXT, ...change.context });

  for (const change of changes) {
    it(`changes when the ${change.name} changes`, () => {
      assert.notEqual(changed(change), baseKey());
    });
  }

  it('gives distinct keys to every single change', () => {
    const keys = new Set(changes.map(changed));
    keys.add(baseKey());
    assert.equal(keys.size, changes.length + 1);
  });

  it('changes with the configuration that shapes the claims: the sub template, a claim name, the broker URL', () => {
    assert.notEqual(keyOf(GRANT, CONTEXT, { ...TOKENS, subject: 'argo:{namespace}:{workflow}' }), baseKey());
    assert.notEqual(keyOf(GRANT, CONTEXT, { ...TOKENS, contextClaim: 'ctx' }), baseKey());
    assert.notEqual(keyOf(GRANT, CONTEXT, TOKENS, 'https://other-broker.test'), baseKey());
  });

  it('does not confuse fields whose values shift between them', () => {
    assert.notEqual(keyOf(GRANT, { rulesVersion: 'ab', generation: 'c' }), keyOf(GRANT, { rulesVersion: 'a', generation: 'bc' }));
    const split = { ...IDENTITY, namespace: 'pay', serviceAccount: 'ments-argo' };
    const joined = { ...IDENTITY, namespace: 'paym', serviceAccount: 'ents-argo' };
    assert.notEqual(keyOf({ ...GRANT, identity: split }), keyOf({ ...GRANT, identity: joined }));
  });
});
