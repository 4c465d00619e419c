import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfigFile, parseConfigText } from '../../src/server/config/load-config.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import type { BrokerConfig } from '../../src/server/config/schema.js';
import {
  ROOT,
  arrayAt,
  at,
  isObject,
  missingToolSkip,
  named,
  objectAt,
  readText,
  readYaml,
  readYamlDocuments,
  stringAt,
  type JsonObject,
} from './deploy-support.js';

/**
 * deploy/kubernetes is what a platform engineer applies on Monday: every manifest is parsed and checked field by
 * field (RBAC exactly, probes, security context, replicas, the keys Secret mount), the ConfigMap's configuration
 * passes the broker's own validation, and `kubectl kustomize` renders the base, the Redis overlay and the TLS overlay.
 */

const BASE = 'deploy/kubernetes/base';
const OVERLAY = 'deploy/kubernetes/overlays/redis';
const TLS_OVERLAY = 'deploy/kubernetes/overlays/tls';
const NAMESPACE = 'platform';
const CONFIG_FILE = `${BASE}/broker.yaml`;
const KEYS_SECRET = 'token-broker-signing-keys';
const POD_LABELS = { 'app.kubernetes.io/name': 'workload-token-broker', 'app.kubernetes.io/component': 'broker' };
const REDIS_URL = 'redis://redis.platform.svc.cluster.local:6379/0';

const KUBECTL_SKIP = missingToolSkip('kubectl', ['version', '--client'], 'install kubectl, with its built-in kustomize, to render the manifests');

/** The manifest files a kustomization lists as resources (directories excluded). */
function resourceFiles(dir: string): string[] {
  const kustomization = readYaml(`${dir}/kustomization.yaml`);
  return arrayAt(kustomization, 'resources')
    .map((entry) => String(entry))
    .filter((entry) => entry.endsWith('.yaml'))
    .map((entry) => `${dir}/${entry}`);
}

const baseManifests = resourceFiles(BASE).flatMap((file) => readYamlDocuments(file).map((manifest) => ({ file, manifest })));
const overlayManifests = resourceFiles(OVERLAY).flatMap((file) => readYamlDocuments(file).map((manifest) => ({ file, manifest })));

/** The one manifest of a kind (and name) among `manifests`. */
function find(manifests: readonly { manifest: JsonObject }[], kind: string, name?: string): JsonObject {
  const found = manifests.filter(({ manifest }) => manifest.kind === kind && (name === undefined || at(manifest, 'metadata.name') === name));
  assert.equal(found.length, 1, `expected exactly one ${kind}${name === undefined ? '' : ` ${name}`}`);
  return (found[0] as { manifest: JsonObject }).manifest;
}

const deployment = find(baseManifests, 'Deployment', 'token-broker');
const podSpec = objectAt(deployment, 'spec.template.spec');
const container = named(arrayAt(podSpec, 'containers'), 'broker');

async function loadBaseConfig(env: { REDIS_URL?: string } = {}): Promise<BrokerConfig> {
  return loadConfigFile(join(ROOT, CONFIG_FILE), env);
}

/** Whether a label selector's matchLabels select the given labels. */
function selects(selector: unknown, labels: unknown): boolean {
  const matchLabels = at(selector, 'matchLabels');
  if (!isObject(matchLabels) || !isObject(labels)) return false;
  return Object.entries(matchLabels).every(([key, value]) => labels[key] === value);
}

describe('deploy/kubernetes: files', () => {
  it('the base kustomization lists every manifest in base/, and base/ holds nothing else but the config', () => {
    const listed = resourceFiles(BASE).map((file) => file.slice(BASE.length + 1)).sort();
    const present = readdirSync(join(ROOT, BASE)).filter((name) => name !== 'kustomization.yaml' && name !== 'broker.yaml').sort();
    assert.deepEqual(listed, present);
    assert.deepEqual(
      listed,
      [
        'deployment.yaml',
        'horizontalpodautoscaler.yaml',
        'namespace.yaml',
        'networkpolicy.yaml',
        'poddisruptionbudget.yaml',
        'rbac.yaml',
        'service.yaml',
        'serviceaccount.yaml',
        'servicemonitor.yaml',
      ],
    );
  });

  it('deploy/kubernetes renders the base, and the overlay builds on the base', () => {
    assert.deepEqual(arrayAt(readYaml('deploy/kubernetes/kustomization.yaml'), 'resources'), ['base']);
    assert.deepEqual(arrayAt(readYaml(`${OVERLAY}/kustomization.yaml`), 'resources'), ['../../base', 'redis.yaml']);
  });

  it('every manifest has apiVersion, kind and a name, and namespaced ones live in the platform namespace', () => {
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);
    for (const { file, manifest } of [...baseManifests, ...overlayManifests]) {
      const where = `${file} ${String(manifest.kind)}`;
      assert.equal(typeof manifest.apiVersion, 'string', where);
      assert.equal(typeof manifest.kind, 'string', where);
      assert.match(stringAt(manifest, 'metadata.name'), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, where);
      assert.equal(at(manifest, 'metadata.namespace'), clusterScoped.has(String(manifest.kind)) ? undefined : NAMESPACE, where);
      const labels = objectAt(manifest, 'metadata.labels');
      assert.equal(labels['app.kubernetes.io/part-of'], 'workload-token-broker', `${where}: app.kubernetes.io/part-of`);
    }
  });

  it('no manifest is a Secret and no file holds a private key: the signing keys are created outside the kustomization', () => {
    for (const { file, manifest } of [...baseManifests, ...overlayManifests]) assert.notEqual(manifest.kind, 'Secret', file);
    const kustomization = readYaml(`${BASE}/kustomization.yaml`);
    assert.equal(kustomization.secretGenerator, undefined);
    const files = readdirSync(join(ROOT, 'deploy/kubernetes'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 12, `found ${files.length} YAML files`);
    for (const file of files) assert.doesNotMatch(readText(`deploy/kubernetes/${file}`), /PRIVATE KEY/, file);
  });
});

describe('deploy/kubernetes: RBAC', () => {
  it('the ClusterRole allows exactly get on pods, namespaces, serviceaccounts and create on tokenreviews', () => {
    const role = find(baseManifests, 'ClusterRole', 'token-broker');
    assert.equal(role.apiVersion, 'rbac.authorization.k8s.io/v1');
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['pods', 'namespaces', 'serviceaccounts'], verbs: ['get'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ]);
    assert.equal(role.aggregationRule, undefined);
  });

  it('binds that role, and system:service-account-issuer-discovery, to the broker\'s service account only', () => {
    const subject = [{ kind: 'ServiceAccount', name: 'token-broker', namespace: NAMESPACE }];
    const binding = find(baseManifests, 'ClusterRoleBinding', 'token-broker');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'token-broker' });
    assert.deepEqual(binding.subjects, subject);
    const discovery = find(baseManifests, 'ClusterRoleBinding', 'token-broker-issuer-discovery');
    assert.deepEqual(discovery.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' });
    assert.deepEqual(discovery.subjects, subject);
    assert.equal(baseManifests.filter(({ manifest }) => manifest.kind === 'ClusterRoleBinding').length, 2);
    assert.equal(baseManifests.filter(({ manifest }) => manifest.kind === 'RoleBinding' || manifest.kind === 'Role').length, 0);
  });

  it('the service account is the Deployment\'s, with its token mounted', () => {
    const account = find(baseManifests, 'ServiceAccount', 'token-broker');
    assert.equal(account.automountServiceAccountToken, true);
    assert.equal(podSpec.serviceAccountName, 'token-broker');
    assert.equal(podSpec.automountServiceAccountToken, true);
  });

  it('the namespace is platform, with the restricted Pod Security Standard reported', () => {
    const namespace = find(baseManifests, 'Namespace');
    assert.equal(at(namespace, 'metadata.name'), NAMESPACE);
    const labels = objectAt(namespace, 'metadata.labels');
    assert.equal(labels['pod-security.kubernetes.io/warn'], 'restricted');
    assert.equal(labels['pod-security.kubernetes.io/audit'], 'restricted');
  });
});

describe('deploy/kubernetes: the Deployment', () => {
  it('runs at least two replicas whose labels its selector, the Service, the PDB and the HPA agree on', () => {
    assert.equal(deployment.apiVersion, 'apps/v1');
    const replicas = at(deployment, 'spec.replicas');
    assert.equal(typeof replicas, 'number');
    assert.ok((replicas as number) >= 2, `replicas ${String(replicas)}`);
    assert.deepEqual(at(deployment, 'spec.selector.matchLabels'), POD_LABELS);
    const podLabels = objectAt(deployment, 'spec.template.metadata.labels');
    assert.ok(selects(at(deployment, 'spec.selector'), podLabels));
    assert.deepEqual(at(deployment, 'spec.strategy'), { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const service = find(baseManifests, 'Service', 'token-broker');
    assert.deepEqual(at(service, 'spec.selector'), POD_LABELS);
    const pdb = find(baseManifests, 'PodDisruptionBudget', 'token-broker');
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.deepEqual(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: POD_LABELS } });
  });

  it('the pod and the container run as the image\'s non-root user, read-only, without privileges, seccomp RuntimeDefault', () => {
    assert.deepEqual(podSpec.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(podSpec.hostNetwork, undefined);
    assert.equal(podSpec.hostPID, undefined);
  });

  it('probes /healthz for liveness and startup and /readyz for readiness, on the http port 8080', () => {
    assert.deepEqual(container.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(container.livenessProbe, { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });
    assert.deepEqual(container.readinessProbe, { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 });
    assert.deepEqual(container.startupProbe, { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 30 });
  });

  it('sets requests and limits, with the Node.js heap below the memory limit', () => {
    assert.deepEqual(container.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    assert.deepEqual(container.env, [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=192 --max-semi-space-size=8' }]);
  });

  it('spreads replicas over nodes (required) and zones (preferred)', () => {
    const labelSelector = { matchLabels: POD_LABELS };
    assert.deepEqual(podSpec.topologySpreadConstraints, [
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector, matchLabelKeys: ['pod-template-hash'] },
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector, matchLabelKeys: ['pod-template-hash'] },
    ]);
  });

  it('mounts the ConfigMap where --config points, the keys Secret at signing.keysDir, and a small /tmp', async () => {
    const config = await loadBaseConfig();
    assert.deepEqual(container.args, ['serve', '--config', '/etc/token-broker/config/broker.yaml']);
    assert.deepEqual(container.volumeMounts, [
      { name: 'config', mountPath: '/etc/token-broker/config', readOnly: true },
      { name: 'signing-keys', mountPath: config.signing.keysDir, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ]);
    assert.equal(config.signing.keysDir, '/etc/token-broker/keys');
    assert.deepEqual(podSpec.volumes, [
      { name: 'config', configMap: { name: 'token-broker-config' } },
      // 288 = 0o440: readable by the owner and by fsGroup, not by others.
      { name: 'signing-keys', secret: { secretName: KEYS_SECRET, optional: false, defaultMode: 0o440 } },
      { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
    ]);
    const generator = arrayAt(readYaml(`${BASE}/kustomization.yaml`), 'configMapGenerator');
    assert.equal(generator.length, 1);
    assert.equal(at(generator[0], 'name'), 'token-broker-config');
    assert.equal(at(generator[0], 'namespace'), NAMESPACE);
    assert.deepEqual(at(generator[0], 'files'), ['broker.yaml']);
  });

  it('gives in-flight exchanges more time to finish than the preStop pause plus server.shutdownTimeoutSeconds', async () => {
    const config = await loadBaseConfig();
    assert.deepEqual(container.lifecycle, { preStop: { exec: { command: ['sleep', '5'] } } });
    assert.equal(config.server.shutdownTimeoutSeconds, 20);
    assert.equal(podSpec.terminationGracePeriodSeconds, 30);
    assert.ok(30 > 5 + config.server.shutdownTimeoutSeconds);
  });

  it('uses the image kustomize pins to the package version', () => {
    const pkg = JSON.parse(readText('package.json')) as { version: string };
    assert.equal(container.image, 'workload-token-broker');
    assert.deepEqual(arrayAt(readYaml(`${BASE}/kustomization.yaml`), 'images'), [{ name: 'workload-token-broker', newTag: pkg.version }]);
  });
});

describe('deploy/kubernetes: the configuration in the ConfigMap', () => {
  it('passes the broker\'s own validation, as a file and as parsed text, with no warnings', async () => {
    const config = await loadBaseConfig();
    const result = validateConfig(parseConfigText(readText(CONFIG_FILE), CONFIG_FILE));
    assert.equal(result.ok, true);
    assert.deepEqual(result.ok ? result.warnings : undefined, []);
    assert.equal(config.rules.length, 1);
  });

  it('trusts the in-cluster issuer through the automounted CA and token, with the kubernetes block on', async () => {
    const config = await loadBaseConfig();
    assert.deepEqual(
      config.issuers.map((issuer) => ({ ...issuer })),
      [
        {
          name: 'in-cluster',
          issuer: 'https://kubernetes.default.svc.cluster.local',
          audiences: ['tyk-token-broker'],
          kind: 'kubernetes',
          jwksUri: 'https://kubernetes.default.svc.cluster.local/openid/v1/jwks',
          caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          clockSkewSeconds: 30,
          allowInsecureHttp: false,
        },
      ],
    );
    assert.deepEqual(config.kubernetes, { enabled: true, podBinding: 'enforce', verification: 'jwks', cacheSeconds: { namespace: 60, serviceAccount: 60, pod: 10 } });
  });

  it('listens on the container port and is published as the Service\'s cluster DNS name', async () => {
    const config = await loadBaseConfig();
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.host, '0.0.0.0');
    const service = find(baseManifests, 'Service', 'token-broker');
    assert.deepEqual(at(service, 'spec.ports'), [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    assert.equal(config.server.publicUrl, `http://${String(at(service, 'metadata.name'))}.${NAMESPACE}.svc.cluster.local`);
  });

  it('has no Redis of its own; REDIS_URL of the overlay turns it on', async () => {
    assert.equal((await loadBaseConfig()).cache.redis, undefined);
    const withRedis = await loadBaseConfig({ REDIS_URL });
    assert.equal(withRedis.cache.redis?.url, REDIS_URL);
  });
});

describe('deploy/kubernetes: autoscaling, network policy, monitoring', () => {
  it('the HorizontalPodAutoscaler (autoscaling/v2) scales the Deployment on CPU, never below its replica count', () => {
    const hpa = find(baseManifests, 'HorizontalPodAutoscaler', 'token-broker');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(at(hpa, 'spec.scaleTargetRef'), { apiVersion: 'apps/v1', kind: 'Deployment', name: 'token-broker' });
    assert.equal(at(hpa, 'spec.minReplicas'), at(deployment, 'spec.replicas'));
    assert.equal(at(hpa, 'spec.maxReplicas'), 6);
    assert.deepEqual(at(hpa, 'spec.metrics'), [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }]);
    // Utilization is relative to the request: without one the autoscaler cannot compute it.
    assert.equal(at(container, 'resources.requests.cpu'), '100m');
  });

  it('the NetworkPolicy admits port 8080 from workflow namespaces, Tyk and Prometheus only', () => {
    const policy = find(baseManifests, 'NetworkPolicy', 'token-broker');
    assert.equal(policy.apiVersion, 'networking.k8s.io/v1');
    assert.deepEqual(at(policy, 'spec.podSelector'), { matchLabels: POD_LABELS });
    assert.deepEqual(at(policy, 'spec.policyTypes'), ['Ingress', 'Egress']);
    assert.deepEqual(at(policy, 'spec.ingress'), [
      {
        from: [
          { namespaceSelector: { matchLabels: { 'token-broker.io/client': 'true' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'tyk' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  it('the NetworkPolicy lets the broker reach DNS, the API server (HTTPS) and Redis, nothing else', () => {
    const policy = find(baseManifests, 'NetworkPolicy', 'token-broker');
    assert.deepEqual(at(policy, 'spec.egress'), [
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
      {
        to: [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }],
        ports: [
          { protocol: 'TCP', port: 443 },
          { protocol: 'TCP', port: 6443 },
        ],
      },
      {
        to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/part-of': 'workload-token-broker' } } }],
        ports: [{ protocol: 'TCP', port: 6379 }],
      },
    ]);
  });

  it('the ServiceMonitor (monitoring.coreos.com/v1) scrapes /metrics on the Service\'s http port', () => {
    const monitor = find(baseManifests, 'ServiceMonitor', 'token-broker');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    const service = find(baseManifests, 'Service', 'token-broker');
    assert.ok(selects(at(monitor, 'spec.selector'), at(service, 'metadata.labels')), 'the ServiceMonitor selects the Service');
    assert.deepEqual(at(monitor, 'spec.namespaceSelector'), { matchNames: [NAMESPACE] });
    assert.deepEqual(at(monitor, 'spec.endpoints'), [{ port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
  });
});

describe('deploy/kubernetes/overlays/redis', () => {
  const redis = find(overlayManifests, 'Deployment', 'redis');
  const redisPod = objectAt(redis, 'spec.template.spec');
  const redisContainer = named(arrayAt(redisPod, 'containers'), 'redis');

  it('adds REDIS_URL to the broker, naming the overlay\'s Redis Service', () => {
    const patches = arrayAt(readYaml(`${OVERLAY}/kustomization.yaml`), 'patches');
    assert.equal(patches.length, 1);
    assert.deepEqual(at(patches[0], 'target'), { group: 'apps', version: 'v1', kind: 'Deployment', name: 'token-broker' });
    // A JSON 6902 patch: a YAML list of operations.
    const operations: unknown = parse(stringAt(patches[0], 'patch'), { uniqueKeys: true });
    assert.deepEqual(operations, [{ op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'REDIS_URL', value: REDIS_URL } }]);
    // containers/0 in the patch is the broker container.
    assert.equal(at(podSpec, 'containers.0.name'), 'broker');
    const service = find(overlayManifests, 'Service', 'redis');
    const url = new URL(REDIS_URL);
    assert.equal(url.hostname, `${String(at(service, 'metadata.name'))}.${NAMESPACE}.svc.cluster.local`);
    assert.equal(Number(url.port), at(service, 'spec.ports.0.port'));
  });

  it('runs one Redis without persistence, non-root and read-only, behind a Service', () => {
    assert.equal(at(redis, 'spec.replicas'), 1);
    assert.deepEqual(at(redis, 'spec.strategy'), { type: 'Recreate' });
    assert.equal(redisContainer.image, 'redis:7.4.2-alpine');
    assert.deepEqual(redisContainer.args, ['redis-server', '--save', '', '--appendonly', 'no', '--maxmemory', '200mb', '--maxmemory-policy', 'volatile-lru']);
    assert.equal(redisPod.automountServiceAccountToken, false);
    assert.deepEqual(redisPod.securityContext, { runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, seccompProfile: { type: 'RuntimeDefault' } });
    assert.deepEqual(redisContainer.securityContext, {
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const service = find(overlayManifests, 'Service', 'redis');
    assert.ok(selects({ matchLabels: at(service, 'spec.selector') }, at(redis, 'spec.template.metadata.labels')));
    assert.deepEqual(at(service, 'spec.ports'), [{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);
  });

  it('the broker\'s egress rule selects the Redis pods, and only the broker may reach them', () => {
    const brokerPolicy = find(baseManifests, 'NetworkPolicy', 'token-broker');
    const redisLabels = at(redis, 'spec.template.metadata.labels');
    assert.ok(selects(at(brokerPolicy, 'spec.egress.2.to.0.podSelector'), redisLabels));
    const policy = find(overlayManifests, 'NetworkPolicy', 'redis');
    assert.ok(selects(at(policy, 'spec.podSelector'), redisLabels));
    assert.deepEqual(at(policy, 'spec.policyTypes'), ['Ingress', 'Egress']);
    assert.deepEqual(at(policy, 'spec.ingress'), [{ from: [{ podSelector: { matchLabels: POD_LABELS } }], ports: [{ protocol: 'TCP', port: 6379 }] }]);
    assert.deepEqual(at(policy, 'spec.egress'), []);
  });
});

describe('kubectl kustomize', () => {
  function render(dir: string): JsonObject[] {
    const result = spawnSync('kubectl', ['kustomize', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBECONFIG: '/dev/null' } });
    assert.equal(result.error, undefined, `kubectl could not run: ${String(result.error)}`);
    assert.equal(result.status, 0, `kubectl kustomize ${dir} failed:\n${result.stderr}`);
    return readYamlDocuments(`kubectl kustomize ${dir}`, result.stdout);
  }

  const kinds = (manifests: readonly JsonObject[]) => manifests.map((m) => `${String(m.kind)}/${String(at(m, 'metadata.name'))}`).sort();

  const BASE_KINDS = [
    'ClusterRole/token-broker',
    'ClusterRoleBinding/token-broker',
    'ClusterRoleBinding/token-broker-issuer-discovery',
    'Deployment/token-broker',
    'HorizontalPodAutoscaler/token-broker',
    'Namespace/platform',
    'NetworkPolicy/token-broker',
    'PodDisruptionBudget/token-broker',
    'Service/token-broker',
    'ServiceAccount/token-broker',
    'ServiceMonitor/token-broker',
  ];

  it('renders the base: every kind, the ConfigMap with the config file, referenced by its hashed name', { skip: KUBECTL_SKIP }, () => {
    const rendered = render('deploy/kubernetes');
    const configMaps = rendered.filter((m) => m.kind === 'ConfigMap');
    assert.equal(configMaps.length, 1);
    const configMap = configMaps[0] as JsonObject;
    const configMapName = stringAt(configMap, 'metadata.name');
    assert.match(configMapName, /^token-broker-config-[a-z0-9]{10}$/);
    assert.deepEqual(kinds(rendered.filter((m) => m.kind !== 'ConfigMap')), BASE_KINDS);
    assert.equal(at(configMap, 'metadata.namespace'), NAMESPACE);
    assert.deepEqual(Object.keys(objectAt(configMap, 'data')), ['broker.yaml']);
    assert.equal(objectAt(configMap, 'data')['broker.yaml'], readText(CONFIG_FILE));
    const renderedDeployment = rendered.find((m) => m.kind === 'Deployment');
    const volumes = arrayAt(renderedDeployment, 'spec.template.spec.volumes');
    assert.deepEqual(named(volumes, 'config'), { name: 'config', configMap: { name: configMapName } });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(at(renderedDeployment, 'spec.template.spec.containers.0.image'), `workload-token-broker:${pkg.version}`);
    assert.equal(at(named(volumes, 'signing-keys'), 'secret.defaultMode'), 0o440);
    assert.equal(rendered.filter((m) => m.kind === 'Secret').length, 0);
  });

  it('the rendered ConfigMap\'s configuration passes the broker\'s validation', { skip: KUBECTL_SKIP }, () => {
    const configMap = render('deploy/kubernetes').find((m) => m.kind === 'ConfigMap');
    const text = objectAt(configMap, 'data')['broker.yaml'];
    assert.equal(typeof text, 'string');
    const result = validateConfig(parseConfigText(text as string, 'ConfigMap token-broker-config'));
    assert.deepEqual(result.ok ? [] : result.problems, []);
  });

  it('renders the Redis overlay: the base plus Redis, and the broker with REDIS_URL', { skip: KUBECTL_SKIP }, () => {
    const rendered = render(OVERLAY);
    assert.deepEqual(
      kinds(rendered.filter((m) => m.kind !== 'ConfigMap')),
      [...BASE_KINDS, 'Deployment/redis', 'NetworkPolicy/redis', 'Service/redis'].sort(),
    );
    const broker = rendered.find((m) => m.kind === 'Deployment' && at(m, 'metadata.name') === 'token-broker');
    assert.deepEqual(at(broker, 'spec.template.spec.containers.0.env'), [
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=192 --max-semi-space-size=8' },
      { name: 'REDIS_URL', value: REDIS_URL },
    ]);
    assert.equal(rendered.filter((m) => m.kind === 'Secret').length, 0);
  });

  it('renders the TLS overlay: the base plus a cert-manager Certificate, the broker serving HTTPS on the Service\'s 443', { skip: KUBECTL_SKIP }, async () => {
    const rendered = render(TLS_OVERLAY);
    assert.deepEqual(kinds(rendered.filter((m) => m.kind !== 'ConfigMap')), [...BASE_KINDS, 'Certificate/token-broker-tls'].sort());
    const broker = rendered.find((m) => m.kind === 'Deployment' && at(m, 'metadata.name') === 'token-broker');
    const brokerContainer = named(arrayAt(broker, 'spec.template.spec.containers'), 'broker');
    assert.deepEqual(at(brokerContainer, 'ports'), [{ name: 'https', containerPort: 8080, protocol: 'TCP' }]);
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      assert.equal(at(brokerContainer, `${probe}.httpGet.scheme`), 'HTTPS', probe);
      assert.equal(at(brokerContainer, `${probe}.httpGet.port`), 'https', probe);
    }
    const service = rendered.find((m) => m.kind === 'Service' && at(m, 'metadata.name') === 'token-broker');
    assert.deepEqual(at(service, 'spec.ports'), [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);

    // The environment the overlay adds, applied to the base's ConfigMap as the broker's loader applies it.
    const env = Object.fromEntries(arrayAt(brokerContainer, 'env').map((entry) => [stringAt(entry, 'name'), stringAt(entry, 'value')]));
    const config = await loadConfigFile(join(ROOT, CONFIG_FILE), env);
    const mount = named(arrayAt(brokerContainer, 'volumeMounts'), 'tls');
    assert.deepEqual(mount, { name: 'tls', mountPath: '/etc/token-broker/tls', readOnly: true }, 'the whole Secret directory, never subPath (the kubelet does not update those)');
    assert.deepEqual(config.server.tls, { certFile: '/etc/token-broker/tls/tls.crt', keyFile: '/etc/token-broker/tls/tls.key', minVersion: 'TLSv1.2' });
    const publicUrl = new URL(config.server.publicUrl);
    assert.equal(publicUrl.protocol, 'https:');
    assert.equal(publicUrl.port, '', 'the default port, 443: the Service\'s');
    assert.equal(publicUrl.hostname, `${String(at(service, 'metadata.name'))}.${NAMESPACE}.svc.cluster.local`);

    const certificate = rendered.find((m) => m.kind === 'Certificate');
    const secretName = stringAt(certificate, 'spec.secretName');
    assert.equal(at(named(arrayAt(broker, 'spec.template.spec.volumes'), 'tls'), 'secret.secretName'), secretName);
    assert.ok(arrayAt(certificate, 'spec.dnsNames').includes(publicUrl.hostname), 'the certificate names the host of publicUrl');
    assert.ok(arrayAt(certificate, 'spec.usages').includes('server auth'));
    assert.equal(at(certificate, 'metadata.namespace'), NAMESPACE);

    const monitor = rendered.find((m) => m.kind === 'ServiceMonitor');
    assert.deepEqual(at(monitor, 'spec.endpoints.0.port'), 'https');
    assert.deepEqual(at(monitor, 'spec.endpoints.0.scheme'), 'https');
    assert.deepEqual(at(monitor, 'spec.endpoints.0.tlsConfig.ca.secret'), { name: secretName, key: 'ca.crt' });
    assert.ok(arrayAt(certificate, 'spec.dnsNames').includes(stringAt(monitor, 'spec.endpoints.0.tlsConfig.serverName')));
    // The NetworkPolicy still admits the container port the TLS listener uses.
    const policy = rendered.find((m) => m.kind === 'NetworkPolicy' && at(m, 'metadata.name') === 'token-broker');
    assert.equal(at(policy, 'spec.ingress.0.ports.0.port'), 8080);
    assert.equal(rendered.filter((m) => m.kind === 'Secret').length, 0);
  });

  it('the overlay files exist where the kustomizations name them', () => {
    for (const file of [...resourceFiles(BASE), ...resourceFiles(OVERLAY), ...resourceFiles(TLS_OVERLAY), `${BASE}/broker.yaml`]) assert.ok(existsSync(join(ROOT, file)), file);
  });
});
