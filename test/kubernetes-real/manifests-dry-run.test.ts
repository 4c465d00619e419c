import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { kubectlCommand, realKubernetesUnavailableReason, startRealKubernetes, type RealKubernetes } from '../support/real-kubernetes.js';

/*
 * What a platform engineer applies, sent to a real kube-apiserver with `kubectl apply --dry-run=server`: the API
 * server runs its own schema validation, defaulting and admission on every object and stores nothing. Every
 * rendered kustomize output (base, the top-level kustomization, each overlay) and examples/argo/rbac.yaml.
 * Argo's Workflow objects need Argo's CRDs and are validated against Argo's schema in test/examples/ instead; the
 * ServiceMonitor needs the Prometheus Operator's CRD, which this cluster does not have, so it is the one object
 * left out here (test/deploy/ checks it field by field). cert-manager's Certificate (overlays/tls) is checked for
 * real: its published CRD (test/fixtures/crds/, see NOTICE) is installed first, so the API server validates it
 * against cert-manager's own schema.
 */

const SKIP = realKubernetesUnavailableReason() ?? false;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KUSTOMIZATIONS = ['deploy/kubernetes', 'deploy/kubernetes/base', 'deploy/kubernetes/overlays/redis', 'deploy/kubernetes/overlays/tls'];
const CERT_MANAGER_CRD = 'test/fixtures/crds/cert-manager.io_certificates.yaml';
/** Kinds whose CRD this cluster lacks. */
const NEEDS_A_CRD = new Set(['ServiceMonitor']);

function render(dir: string): string {
  const result = spawnSync(kubectlCommand() ?? 'kubectl', ['kustomize', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBECONFIG: '/dev/null' } });
  assert.equal(result.status, 0, `kubectl kustomize ${dir}: ${result.stderr}`);
  return result.stdout;
}

/** The documents, without the kinds this cluster cannot know; returns what was left out too. */
function withoutCrdKinds(text: string): { kept: string; count: number; left: string[] } {
  const left: string[] = [];
  const objects = parseAllDocuments(text)
    .map((document) => document.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .filter((object) => {
      if (object === null) return false;
      if (NEEDS_A_CRD.has(String(object.kind))) {
        left.push(`${String(object.kind)}/${String(object.metadata?.name)}`);
        return false;
      }
      return true;
    });
  // As JSON (a v1 List): re-serialized YAML could turn a quoted "no" into the boolean a YAML 1.1 reader sees.
  return { kept: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }), count: objects.length, left };
}

describe('manifests against a real kube-apiserver: kubectl apply --dry-run=server', { skip: SKIP, timeout: 300_000 }, () => {
  let cluster: RealKubernetes;

  before(async () => {
    cluster = await startRealKubernetes();
    // Namespaced objects are dry-run into namespaces that exist, as on a cluster where the platform namespace was
    // created first; the Namespace objects themselves are dry-run too.
    for (const namespace of ['platform', 'payments']) {
      // --save-config, as `kubectl apply` would have left it: applying the base's Namespace over it then warns of nothing.
      const created = await cluster.kubectl(['create', 'namespace', namespace, '--save-config']);
      assert.equal(created.code, 0, created.stderr);
    }
    const crd = await cluster.kubectl(['apply', '-f', `${ROOT}${CERT_MANAGER_CRD}`]);
    assert.equal(crd.code, 0, crd.stderr);
    const established = await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/certificates.cert-manager.io']);
    assert.equal(established.code, 0, established.stderr);
  });

  after(async () => {
    await cluster?.close();
  });

  for (const dir of KUSTOMIZATIONS) {
    it(`${dir}: every rendered object is accepted`, async () => {
      const { kept, count, left } = withoutCrdKinds(render(dir));
      assert.deepEqual(left, ['ServiceMonitor/token-broker']);
      const result = await cluster.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], kept);
      assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
      assert.equal(result.stderr, '');
      assert.equal(result.stdout.trim().split('\n').filter((line) => line.endsWith('(server dry run)')).length, count, result.stdout);
    });
  }

  it('examples/argo/rbac.yaml is accepted in the payments namespace', async () => {
    const result = await cluster.kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', 'payments', '-f', `${ROOT}examples/argo/rbac.yaml`]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n').sort(), [
      'role.rbac.authorization.k8s.io/argo-executor created (server dry run)',
      'rolebinding.rbac.authorization.k8s.io/argo-executor created (server dry run)',
      'serviceaccount/argo-orders-reader created (server dry run)',
      'serviceaccount/argo-workflow-runner created (server dry run)',
    ]);
  });

  it('the Certificate is validated against cert-manager\'s schema, not waved through: a misspelled field is refused', async () => {
    const result = await cluster.kubectl(
      ['apply', '--dry-run=server', '--validate=strict', '-n', 'platform', '-f', '-'],
      stringify({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'typo' }, spec: { secretName: 'x', dnsNames: ['a'], issuerRef: { name: 'i' }, renewBeforePercentage: 'soon' } }),
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /renewBeforePercentage/);
  });

  it('the dry run is not vacuous: the API server refuses a field it does not know', async () => {
    const result = await cluster.kubectl(
      ['apply', '--dry-run=server', '--validate=strict', '-n', 'payments', '-f', '-'],
      stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'typo' }, automountServiceAcountToken: false }),
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /unknown field "automountServiceAcountToken"/);
  });
});
