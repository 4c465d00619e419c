import type { BrokerConfig } from '../../server/config/schema.js';
import { kubernetesOf } from '../../server/config/validate-config.js';
import { kubernetesClient, loadKubeConfig, type ClusterConnection } from '../../server/kubernetes/kube-config.js';
import { permissionName, requiredKubernetesPermissions, type KubernetesPermission } from '../../server/kubernetes/kubernetes-permissions.js';
import { compileRules } from '../../server/rules/compiled-rules.js';
import { check, type DoctorCheck } from './doctor-check.js';

/** Whether the credential may do `permission` cluster-wide, as the API server decides it. */
export type AccessReviewer = (permission: KubernetesPermission) => Promise<boolean>;

/** A kubeconfig's credential asking the API server about itself (SelfSubjectAccessReview), bounded in time. */
function selfSubjectAccessReviewer(connection: ClusterConnection, timeoutMs: number): AccessReviewer {
  const { AuthorizationV1Api } = kubernetesClient();
  const api = loadKubeConfig(connection).makeApiClient(AuthorizationV1Api);
  return async (permission) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const review = await Promise.race([
        api.createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            // No namespace: every namespace, as the broker looks up whichever namespace a token names.
            spec: { resourceAttributes: { verb: permission.verb, resource: permission.resource, group: permission.group } },
          },
        }),
        deadline,
      ]);
      return review.status?.allowed === true;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** An API failure in one line, without a body (a body may quote anything). */
function describeFailure(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 401) return 'HTTP 401: the API server does not accept this credential (expired or revoked token, wrong user)';
  if (typeof code === 'number') return `HTTP ${code}`;
  return error instanceof Error ? error.message : String(error);
}

export interface KubernetesAccessOptions {
  readonly timeoutMs: number;
  /** For tests: the reviewer of a cluster block. Default: SelfSubjectAccessReview with its kubeconfig. */
  readonly reviewerFor?: (connection: ClusterConnection) => AccessReviewer;
}

/**
 * One check per cluster the configuration reaches (the top-level `kubernetes` block and each issuer's own): its
 * kubeconfig loads, the API server accepts its credential, and that credential holds every permission the
 * configuration needs, each named when missing. Never throws.
 */
export async function checkKubernetesAccess(config: BrokerConfig, options: KubernetesAccessOptions): Promise<DoctorCheck[]> {
  const needs = compileRules(config.rules, { index: false }).needs;
  const clusters = new Map<NonNullable<BrokerConfig['kubernetes']>, string[]>();
  for (const issuer of config.issuers) {
    const settings = kubernetesOf(config, issuer);
    if (settings === undefined || !settings.enabled) continue;
    clusters.set(settings, [...(clusters.get(settings) ?? []), issuer.name]);
  }
  return Promise.all(
    [...clusters].map(async ([settings, issuerNames]) => {
      const name = `kubernetes ${issuerNames.join(',')}`;
      const where = settings.kubeconfig ?? `the in-cluster service account${settings.apiServer !== undefined ? ` at ${settings.apiServer}` : ''}`;
      const required = requiredKubernetesPermissions(settings, needs);
      if (required.length === 0) return check('OK', name, 'the configuration makes no Kubernetes API request');
      let reviewer: AccessReviewer;
      try {
        reviewer = options.reviewerFor?.(settings) ?? selfSubjectAccessReviewer(settings, options.timeoutMs);
      } catch (error) {
        return check('FAIL', name, `cannot load ${where}: ${error instanceof Error ? error.message : String(error)}`, 'fix kubernetes.kubeconfig (serve refuses it too)');
      }
      let answers: boolean[];
      try {
        answers = await Promise.all(required.map((permission) => reviewer(permission)));
      } catch (error) {
        return check('FAIL', name, `cannot ask the API server with ${where}: ${describeFailure(error)}`, 'check the kubeconfig\'s server, CA and credential');
      }
      const missing = required.filter((_permission, i) => answers[i] !== true);
      if (missing.length > 0) {
        return check(
          'FAIL',
          name,
          `${where} may not ${missing.map((permission) => `${permissionName(permission)} (for ${permission.neededFor.join(', ')})`).join('; ')}`,
          'grant what deploy/kubernetes/base/rbac.yaml grants to the broker\'s service account',
        );
      }
      return check('OK', name, `${where} may ${required.map(permissionName).join(', ')} in every namespace`);
    }),
  );
}
