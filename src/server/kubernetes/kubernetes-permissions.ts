import type { BrokerConfig } from '../config/schema.js';
import type { MetadataNeeds } from '../rules/compiled-rules.js';

/** One Kubernetes API permission the broker's configuration makes it use, and why. */
export interface KubernetesPermission {
  readonly verb: 'get' | 'create';
  readonly resource: 'pods' | 'namespaces' | 'serviceaccounts' | 'tokenreviews';
  /** The API group: '' for the core group. */
  readonly group: '' | 'authentication.k8s.io';
  /** The configuration that needs it, in words: "podBinding: enforce", "a namespaceSelector rule". */
  readonly neededFor: readonly string[];
}

type Settings = NonNullable<BrokerConfig['kubernetes']>;

/** The one permission each kind of lookup uses, as deploy/kubernetes/base/rbac.yaml grants it. */
export const LOOKUP_PERMISSIONS: Readonly<Record<KubernetesPermission['resource'], Pick<KubernetesPermission, 'verb' | 'resource' | 'group'>>> = {
  pods: { verb: 'get', resource: 'pods', group: '' },
  serviceaccounts: { verb: 'get', resource: 'serviceaccounts', group: '' },
  namespaces: { verb: 'get', resource: 'namespaces', group: '' },
  tokenreviews: { verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' },
};

/**
 * Exactly the permissions a cluster block and the rules make the broker use, cluster-wide (the lookups name
 * whichever namespace a token carries). The same four deploy/kubernetes/base/rbac.yaml grants; fewer when the
 * configuration needs fewer. Pure.
 */
export function requiredKubernetesPermissions(settings: Settings, needs: MetadataNeeds): KubernetesPermission[] {
  const enforce = settings.podBinding === 'enforce';
  const wanted: [KubernetesPermission['resource'], string[]][] = [
    ['pods', [...(enforce ? ['podBinding: enforce'] : []), ...(needs.pod ? ['rules on pod labels, annotations or workflows'] : [])]],
    ['serviceaccounts', [...(enforce ? ['podBinding: enforce'] : []), ...(needs.serviceAccountLabels ? ['a serviceAccountSelector rule'] : [])]],
    ['namespaces', needs.namespaceLabels ? ['a namespaceSelector rule'] : []],
    ['tokenreviews', settings.verification === 'tokenreview' ? ['verification: tokenreview'] : []],
  ];
  return wanted.filter(([, why]) => why.length > 0).map(([resource, neededFor]) => ({ ...LOOKUP_PERMISSIONS[resource], neededFor }));
}

/** `get pods`, `create tokenreviews.authentication.k8s.io`: as `kubectl auth can-i` names it. */
export function permissionName(permission: Pick<KubernetesPermission, 'verb' | 'resource' | 'group'>): string {
  return `${permission.verb} ${permission.resource}${permission.group === '' ? '' : `.${permission.group}`}`;
}
