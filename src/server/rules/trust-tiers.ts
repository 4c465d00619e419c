import type { RuleConfig } from '../config/schema.js';

/**
 * Who controls a rule's conditions. Issuer, namespace and service account (and their labels) are set by the
 * cluster's and namespace's administrators: `admin`. Pod labels, pod annotations and the workflow name are set by
 * whoever submits a workflow (Argo copies podMetadata and template labels onto the pod): `submitter`.
 */
export type TrustTier = 'admin' | 'submitter';

/**
 * Claims about the pod: Argo names pods `<workflow>-<template>-<hash>`, and the submitter names the workflow, so a
 * condition on them is a condition the submitter can satisfy at will.
 */
const POD_CLAIM = /^\/kubernetes\.io\/pod(\/|$)/;

/** The tier of a rule: `submitter` as soon as any condition reads submitter-controlled metadata. Pure. */
export function ruleTier(rule: RuleConfig): TrustTier {
  const { match } = rule;
  const readsPod =
    match.podSelector !== undefined ||
    match.podAnnotationSelector !== undefined ||
    match.workflows !== undefined ||
    Object.keys(match.claims ?? {}).some((pointer) => POD_CLAIM.test(pointer));
  return readsPod ? 'submitter' : 'admin';
}

/** A glob list that matches anything (`*`, `**`) scopes nothing. */
function narrows(globs: readonly string[] | undefined): boolean {
  return globs !== undefined && globs.some((glob) => !/^\*+$/.test(glob));
}

/** An empty selector matches every object, so it scopes nothing either. */
function selects(selector: { matchLabels?: object | undefined; matchExpressions?: readonly unknown[] | undefined } | undefined): boolean {
  return selector !== undefined && (Object.keys(selector.matchLabels ?? {}).length > 0 || (selector.matchExpressions ?? []).length > 0);
}

/**
 * Whether a rule is really scoped by an administrator-controlled condition on the workload: `namespaces: ['*']`
 * or an empty selector would let pod labels alone unlock the rule's policies in every namespace.
 */
function hasAdminScope(rule: RuleConfig): boolean {
  const { match } = rule;
  return narrows(match.namespaces) || narrows(match.serviceAccounts) || selects(match.namespaceSelector) || selects(match.serviceAccountSelector);
}

/**
 * The trust-tier invariants, checked at configuration load and again when rules are compiled:
 * a rule with submitter-controlled conditions may only offer `requestable` policies (never grant with
 * `policies`), and must be scoped by a namespace or service-account condition, so that the namespace's
 * administrators decide which pods could ever select them. Returns one message per violation. Pure.
 */
export function trustTierViolations(rule: RuleConfig): { field: string; message: string }[] {
  const violations: { field: string; message: string }[] = [];
  if (rule.policies === undefined && rule.requestable === undefined) {
    violations.push({ field: 'policies', message: 'a rule must grant `policies` or offer `requestable` ones' });
  }
  if (ruleTier(rule) === 'submitter') {
    if (rule.policies !== undefined) {
      violations.push({
        field: 'policies',
        message: 'this rule reads pod labels, pod annotations, the pod name or the workflow name, which a workflow\'s submitter sets: it may only offer `requestable` policies, not grant `policies`',
      });
    }
    if (!hasAdminScope(rule)) {
      violations.push({
        field: 'match',
        message: 'a rule with pod conditions must also narrow namespaces, serviceAccounts, namespaceSelector or serviceAccountSelector (not only `*` or an empty selector), so administrators decide which workloads may select its policies',
      });
    }
  }
  return violations;
}
