import { resolveJsonPointer } from './json-pointer.js';
import { firstUnmatchedRequirement, type LabelSelector, type Labels } from './label-selector.js';
import { expandPolicyTemplate, type PolicyTemplate } from './policy-template.js';
import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import { candidateRules, type CompiledRule, type CompiledRules } from './compiled-rules.js';

/** Why one rule did or did not match: for logs, audit and the explain tool, never for the response. */
export interface RuleVerdict {
  readonly rule: string;
  readonly matched: boolean;
  /** The first condition that failed; absent when the rule matched. */
  readonly reason?: string;
  /** For a matched rule: policies it could not produce (a template without a value, or outside allowedPolicies). */
  readonly dropped?: readonly string[];
}

export interface PolicyDecision {
  /** Granted without asking: matching rules' `policies`, and `requestable` of matching submitter-tier rules. */
  readonly policies: readonly string[];
  /** Granted only when requested with `scope`: `requestable` of matching administrator-tier rules. */
  readonly requestable: readonly string[];
  /** Smallest TTL among matching rules, capped by the maximum; the default when no matching rule sets one. */
  readonly ttlSeconds: number;
  readonly matchedRules: readonly string[];
  readonly verdicts: readonly RuleVerdict[];
}

function selectorMismatch(what: string, selector: LabelSelector | undefined, labels: Labels | undefined): string | undefined {
  if (selector === undefined) return undefined;
  // Undefined means nobody asked: the issuer has no Kubernetes API, or an offline identity (explain, test-rules) gives none.
  if (labels === undefined) return `${what} are not known (no Kubernetes API lookup for this issuer, or an offline identity without them)`;
  const failed = firstUnmatchedRequirement(selector, labels);
  return failed === undefined ? undefined : `${what}: ${failed}`;
}

/**
 * The first three conditions of firstMismatch (issuer, namespace, service account) as a yes/no, without writing a
 * reason: most candidate rules fail here (globs the index cannot narrow), and a reason is read only to explain a
 * refusal. False means firstMismatch returns a reason; true means it has to be asked.
 */
function passesWorkloadNames(rule: CompiledRule, identity: WorkloadIdentity): boolean {
  if (rule.issuers && !rule.issuers.has(identity.issuerName)) return false;
  if (rule.namespaces && (identity.namespace === undefined || !rule.namespaces(identity.namespace))) return false;
  if (rule.serviceAccounts && (identity.serviceAccount === undefined || !rule.serviceAccounts(identity.serviceAccount))) return false;
  return true;
}

function firstMismatch(rule: CompiledRule, identity: WorkloadIdentity): string | undefined {
  if (rule.issuers && !rule.issuers.has(identity.issuerName)) {
    return `issuer "${identity.issuerName}" is not in [${[...rule.issuers].join(', ')}]`;
  }
  if (rule.namespaces) {
    if (identity.namespace === undefined) return 'the token carries no namespace';
    if (!rule.namespaces(identity.namespace)) {
      return `namespace "${identity.namespace}" matches none of [${rule.source.match.namespaces?.join(', ')}]`;
    }
  }
  if (rule.serviceAccounts) {
    if (identity.serviceAccount === undefined) return 'the token carries no service account';
    if (!rule.serviceAccounts(identity.serviceAccount)) {
      return `service account "${identity.serviceAccount}" matches none of [${rule.source.match.serviceAccounts?.join(', ')}]`;
    }
  }
  for (const condition of rule.claims) {
    const value = resolveJsonPointer(identity.claims, condition.tokens);
    if (typeof value !== 'string') return `claim ${condition.pointer} is ${value === undefined ? 'absent' : 'not a string'}`;
    if (!condition.matches(value)) return `claim ${condition.pointer} = "${value}" does not match "${condition.pattern}"`;
  }
  const cluster = identity.cluster;
  return (
    selectorMismatch('namespace labels', rule.namespaceSelector, cluster?.namespaceLabels) ??
    selectorMismatch('service-account labels', rule.serviceAccountSelector, cluster?.serviceAccountLabels) ??
    selectorMismatch('pod labels', rule.podSelector, cluster?.podLabels) ??
    selectorMismatch('pod annotations', rule.podAnnotationSelector, cluster?.podAnnotations) ??
    workflowMismatch(rule, identity)
  );
}

function workflowMismatch(rule: CompiledRule, identity: WorkloadIdentity): string | undefined {
  if (rule.workflows === undefined) return undefined;
  const { workflow } = argoContextOf(identity);
  if (workflow === undefined) return 'the pod is not an Argo workflow pod, or its labels were not looked up';
  return rule.workflows(workflow) ? undefined : `workflow "${workflow}" matches none of [${rule.source.match.workflows?.join(', ')}]`;
}

/** Expands a rule's templates and applies its allowedPolicies; what cannot be produced is reported, not granted. */
function produce(rule: CompiledRule, templates: readonly PolicyTemplate[], identity: WorkloadIdentity, dropped: string[]): string[] {
  const produced: string[] = [];
  for (const template of templates) {
    const result = expandPolicyTemplate(template, identity);
    if (!result.ok) {
      dropped.push(result.reason);
    } else if (rule.allowedPolicies !== undefined && !rule.allowedPolicies(result.policy)) {
      dropped.push(`"${result.policy}" is not in allowedPolicies [${rule.source.allowedPolicies?.join(', ')}]`);
    } else {
      produced.push(result.policy);
    }
  }
  return produced;
}

/**
 * Applies every rule to an identity. Each matching rule contributes its policies (templates filled from
 * administrator-controlled values only, each checked against the rule's allowedPolicies); submitter-tier rules
 * contribute only their `requestable` policies; the token lifetime is the smallest any matching rule allows.
 * Pure: same identity and rules, same decision.
 *
 * Only the rules the index leaves as candidates are matched (the others fail on issuer or namespace); `verdicts`,
 * one per rule in order, is built when first read, since it is read only to explain a refusal. The decision is
 * the one a scan of every rule gives.
 */
export function evaluateRules(
  rules: CompiledRules,
  identity: WorkloadIdentity,
  lifetimes: { readonly defaultTtlSeconds: number; readonly maxTtlSeconds: number },
): PolicyDecision {
  const policies = new Set<string>();
  const requestable = new Set<string>();
  const matchedRules: string[] = [];
  /** Verdicts of the candidates that got past passesWorkloadNames; every other rule's is computed only if `verdicts` is read. */
  const judged = new Map<number, RuleVerdict>();
  let ttl: number | undefined;
  for (const position of candidateRules(rules, identity.issuerName, identity.namespace)) {
    const rule = rules.rules[position];
    if (rule === undefined || !passesWorkloadNames(rule, identity)) continue;
    const reason = firstMismatch(rule, identity);
    if (reason !== undefined) {
      judged.set(position, { rule: rule.name, matched: false, reason });
      continue;
    }
    const dropped: string[] = [];
    for (const policy of produce(rule, rule.policies, identity, dropped)) policies.add(policy);
    // A submitter-tier rule matched because the pod asked (its labels); an admin-tier rule's requestable
    // policies wait for an explicit `scope`.
    const target = rule.tier === 'submitter' ? policies : requestable;
    for (const policy of produce(rule, rule.requestable, identity, dropped)) target.add(policy);
    judged.set(position, { rule: rule.name, matched: true, ...(dropped.length > 0 && { dropped }) });
    matchedRules.push(rule.name);
    if (rule.ttlSeconds !== undefined) ttl = Math.min(ttl ?? Infinity, rule.ttlSeconds);
  }
  for (const policy of policies) requestable.delete(policy);
  let verdicts: readonly RuleVerdict[] | undefined;
  return {
    policies: [...policies],
    requestable: [...requestable],
    ttlSeconds: Math.min(ttl ?? lifetimes.defaultTtlSeconds, lifetimes.maxTtlSeconds),
    matchedRules,
    get verdicts(): readonly RuleVerdict[] {
      verdicts ??= rules.rules.map((rule, position) => {
        const known = judged.get(position);
        if (known !== undefined) return known;
        // Not a candidate (its issuer or namespace fails), or one whose workload names failed: never a match.
        const reason = firstMismatch(rule, identity);
        if (reason === undefined) throw new Error(`rule "${rule.name}" matches but was passed over`);
        return { rule: rule.name, matched: false, reason };
      });
      return verdicts;
    },
  };
}
