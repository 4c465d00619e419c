import { createHash } from 'node:crypto';
import { compileGlobs, type GlobMatcher } from './glob.js';
import { parseJsonPointer } from './json-pointer.js';
import { parsePolicyTemplate, type PolicyTemplate } from './policy-template.js';
import { ruleTier, trustTierViolations, type TrustTier } from './trust-tiers.js';
import type { LabelSelector } from './label-selector.js';
import type { RuleConfig } from '../config/schema.js';

export interface CompiledClaimCondition {
  readonly pointer: string;
  readonly tokens: readonly string[];
  readonly pattern: string;
  readonly matches: GlobMatcher;
}

/** A rule with its globs and templates compiled, ready for pure matching. */
export interface CompiledRule {
  readonly name: string;
  readonly tier: TrustTier;
  readonly issuers: ReadonlySet<string> | undefined;
  readonly namespaces: GlobMatcher | undefined;
  readonly serviceAccounts: GlobMatcher | undefined;
  readonly claims: readonly CompiledClaimCondition[];
  readonly namespaceSelector: LabelSelector | undefined;
  readonly serviceAccountSelector: LabelSelector | undefined;
  readonly podSelector: LabelSelector | undefined;
  readonly podAnnotationSelector: LabelSelector | undefined;
  readonly workflows: GlobMatcher | undefined;
  /** Granted whenever the rule matches. */
  readonly policies: readonly PolicyTemplate[];
  /** Granted when asked for: by `scope`, or (submitter-tier rules) by the pod matching the rule. */
  readonly requestable: readonly PolicyTemplate[];
  readonly allowedPolicies: GlobMatcher | undefined;
  readonly ttlSeconds: number | undefined;
  readonly source: RuleConfig;
}

/** Which Kubernetes lookups the rules need, so an exchange fetches nothing it will not use. */
export interface MetadataNeeds {
  readonly namespaceLabels: boolean;
  readonly serviceAccountLabels: boolean;
  readonly pod: boolean;
}

/** An immutable, compiled rule set; swapped as a whole when configuration changes. */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  /** Content hash of the rules: part of every cache key, so a rule change never serves a stale grant. */
  readonly version: string;
  readonly needs: MetadataNeeds;
}

function readsLabels(templates: readonly PolicyTemplate[], source: 'namespace.labels' | 'serviceAccount.labels'): boolean {
  return templates.some((t) => t.kind === 'template' && t.parts.some((p) => 'variable' in p && p.variable.source === source));
}

/**
 * Compiles rules once at load; matching never parses a pattern again. Refuses (throws) a rule that breaks the
 * trust tiers even if it got past configuration validation: the invariant is enforced where it is used.
 */
export function compileRules(rules: readonly RuleConfig[]): CompiledRules {
  const compiled = rules.map((rule): CompiledRule => {
    const violation = trustTierViolations(rule)[0];
    if (violation !== undefined) throw new Error(`rule "${rule.name}": ${violation.message}`);
    const { match } = rule;
    return {
      name: rule.name,
      tier: ruleTier(rule),
      issuers: match.issuers ? new Set(match.issuers) : undefined,
      namespaces: match.namespaces ? compileGlobs(match.namespaces) : undefined,
      serviceAccounts: match.serviceAccounts ? compileGlobs(match.serviceAccounts) : undefined,
      claims: Object.entries(match.claims ?? {}).map(([pointer, pattern]) => ({
        pointer,
        tokens: parseJsonPointer(pointer),
        pattern,
        matches: compileGlobs([pattern]),
      })),
      namespaceSelector: match.namespaceSelector,
      serviceAccountSelector: match.serviceAccountSelector,
      podSelector: match.podSelector,
      podAnnotationSelector: match.podAnnotationSelector,
      workflows: match.workflows ? compileGlobs(match.workflows) : undefined,
      policies: [...new Set(rule.policies ?? [])].map(parsePolicyTemplate),
      requestable: [...new Set(rule.requestable ?? [])].map(parsePolicyTemplate),
      allowedPolicies: rule.allowedPolicies ? compileGlobs(rule.allowedPolicies) : undefined,
      ttlSeconds: rule.ttlSeconds,
      source: rule,
    };
  });
  const needs: MetadataNeeds = {
    namespaceLabels: compiled.some(
      (r) => r.namespaceSelector !== undefined || readsLabels([...r.policies, ...r.requestable], 'namespace.labels'),
    ),
    serviceAccountLabels: compiled.some(
      (r) => r.serviceAccountSelector !== undefined || readsLabels([...r.policies, ...r.requestable], 'serviceAccount.labels'),
    ),
    pod: compiled.some((r) => r.tier === 'submitter'),
  };
  const version = createHash('sha256').update(JSON.stringify(rules)).digest('base64url').slice(0, 16);
  return Object.freeze({ rules: Object.freeze(compiled), version, needs: Object.freeze(needs) });
}
