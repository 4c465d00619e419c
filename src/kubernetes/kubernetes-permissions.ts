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

/**
 * Exactly the permissions a cluster block and the rules make the broker use, cluster-wide (the lookups name
 * whichever namespace a token carries). The same four deploy/kubernetes/base/rbac.yaml grants; fewer when the
 * configuration needs fewer. Pure.
 */
export function requiredKubernetesPermissions(settings: Settings, needs: MetadataNeeds): KubernetesPermission[] {
  const enforce = settings.podBinding === 'enforce';
  const wanted: [KubernetesPermission['verb'], KubernetesPermission['resource'], KubernetesPermission['group'], string[]][] = [
    ['get', 'pods', '', [...(enforce ? ['podBinding: enforce'] : []), ...(needs.pod ? ['rules on pod labels, annotations or workflows'] : [])]],
    ['get', 'serviceaccounts', '', [...(enforce ? ['podBinding: enforce'] : []), ...(needs.serviceAccountLabels ? ['a serviceAccountSelector rule'] : [])]],
    ['get', 'namespaces', '', needs.namespaceLabels ? ['a namespaceSelector rule'] : []],
    ['create', 'tokenreviews', 'authentication.k8s.io', settings.verification === 'tokenreview' ? ['verification: tokenreview'] : []],
  ];
  return wanted.filter(([, , , why]) => why.length > 0).map(([verb, resource, group, neededFor]) => ({ verb, resource, group, neededFor }));
}

/** `get pods`, `create tokenreviews.authentication.k8s.io`: as `kubectl auth can-i` names it. */
export function permissionName(permission: Pick<KubernetesPermission, 'verb' | 'resource' | 'group'>): string {
  return `${permission.verb} ${permission.resource}${permission.group === '' ? '' : `.${permission.group}`}`;
}
