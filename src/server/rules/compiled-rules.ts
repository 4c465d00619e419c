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

/** Stands for "any issuer" in the index; a symbol, so no string from a token can equal it. */
export const ANY: unique symbol = Symbol('any');

/** One issuer's rules (or those of rules naming no issuer), by what their namespace condition allows. */
export interface NamespaceBuckets {
  /** Rules without a namespace condition, or with a pattern starting with `*`: any namespace may match. */
  readonly anyNamespace: readonly number[];
  /** Rules by each exact namespace they name. */
  readonly exact: ReadonlyMap<string, readonly number[]>;
  /** Rules by the literal prefix of each glob they name (`team-*` under `team-`): only namespaces with it may match. */
  readonly prefix: ReadonlyMap<string, readonly number[]>;
  readonly longestPrefix: number;
}

/**
 * The rules bucketed by what every identity carries: its issuer and its namespace. A rule goes under each issuer
 * it names (ANY when it names none) and, within that, under each exact namespace and each glob prefix it names, or
 * under `anyNamespace` when its namespaces are unconditioned or start with a glob. A rule in none of the buckets an
 * identity's issuer and namespace reach fails its issuer or namespace condition, so matching never looks at it.
 */
export interface RuleIndex {
  /** Rule positions, ascending within each bucket. */
  readonly byIssuer: ReadonlyMap<string | typeof ANY, NamespaceBuckets>;
  /** Per issuer (ANY: any other issuer), its `any` bucket merged with ANY's: the candidates before namespaces. */
  readonly base: ReadonlyMap<string | typeof ANY, readonly number[]>;
}

/** An immutable, compiled rule set; swapped as a whole when configuration changes. */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  /** Content hash of the rules: part of every cache key, so a rule change never serves a stale grant. */
  readonly version: string;
  readonly needs: MetadataNeeds;
  /** Absent: every rule is a candidate for every identity (a linear scan, the reference the index must equal). */
  readonly index?: RuleIndex;
}

function readsLabels(templates: readonly PolicyTemplate[], source: 'namespace.labels' | 'serviceAccount.labels'): boolean {
  return templates.some((t) => t.kind === 'template' && t.parts.some((p) => 'variable' in p && p.variable.source === source));
}

const ascending = (a: number, b: number) => a - b;

function buildIndex(rules: readonly CompiledRule[]): RuleIndex {
  const byIssuer = new Map<string | typeof ANY, { anyNamespace: number[]; exact: Map<string, number[]>; prefix: Map<string, number[]>; longestPrefix: number }>();
  const add = (map: Map<string, number[]>, key: string, position: number) => {
    const bucket = map.get(key);
    if (bucket === undefined) map.set(key, [position]);
    else if (bucket[bucket.length - 1] !== position) bucket.push(position); // a pattern named twice counts once
  };
  rules.forEach((rule, position) => {
    const patterns = rule.source.match.namespaces;
    // A pattern with nothing before its first `*` can match any namespace: the rule goes under `any`, only there.
    const anyNamespace = patterns === undefined || patterns.some((p) => p.startsWith('*'));
    const issuers: (string | typeof ANY)[] = rule.issuers === undefined ? [ANY] : [...rule.issuers];
    for (const issuer of issuers) {
      let buckets = byIssuer.get(issuer);
      if (buckets === undefined) byIssuer.set(issuer, (buckets = { anyNamespace: [], exact: new Map(), prefix: new Map(), longestPrefix: 0 }));
      if (anyNamespace) {
        buckets.anyNamespace.push(position);
        continue;
      }
      for (const pattern of patterns) {
        const star = pattern.indexOf('*');
        if (star === -1) {
          add(buckets.exact, pattern, position);
        } else {
          add(buckets.prefix, pattern.slice(0, star), position);
          buckets.longestPrefix = Math.max(buckets.longestPrefix, star);
        }
      }
    }
  });
  const anyIssuer = byIssuer.get(ANY)?.anyNamespace ?? [];
  const base = new Map<string | typeof ANY, readonly number[]>([[ANY, anyIssuer]]);
  for (const [issuer, buckets] of byIssuer) {
    if (issuer !== ANY) base.set(issuer, [...buckets.anyNamespace, ...anyIssuer].sort(ascending));
  }
  return Object.freeze({ byIssuer, base });
}

/** The rules of one issuer's buckets whose exact namespaces or glob prefixes admit `namespace`. */
function namespaceCandidates(buckets: NamespaceBuckets | undefined, namespace: string, into: number[]): void {
  if (buckets === undefined) return;
  const exact = buckets.exact.get(namespace);
  if (exact !== undefined) into.push(...exact);
  const longest = Math.min(buckets.longestPrefix, namespace.length);
  for (let length = 1; length <= longest; length++) {
    const prefixed = buckets.prefix.get(namespace.slice(0, length));
    if (prefixed !== undefined) into.push(...prefixed);
  }
}

/**
 * Positions of the rules that could match an identity of this issuer and namespace, in rule order, each once;
 * every other rule fails its issuer or namespace condition. Without an index: every rule. Pure.
 */
export function candidateRules(rules: CompiledRules, issuerName: string, namespace: string | undefined): readonly number[] {
  const { index } = rules;
  if (index === undefined) return rules.rules.map((_, position) => position);
  const base = index.base.get(issuerName) ?? index.base.get(ANY) ?? [];
  // Without a namespace, a rule that names namespaces cannot match: only the `any` buckets apply.
  if (namespace === undefined) return base;
  const found: number[] = [];
  namespaceCandidates(index.byIssuer.get(issuerName), namespace, found);
  namespaceCandidates(index.byIssuer.get(ANY), namespace, found);
  if (found.length === 0) return base;
  // A rule may be reached twice (an exact name and a glob, or two globs, that both admit the namespace).
  found.push(...base);
  found.sort(ascending);
  return found.filter((position, i) => i === 0 || found[i - 1] !== position);
}

/**
 * Compiles rules once at load; matching never parses a pattern again, and (unless `index: false`) never looks at a
 * rule whose issuer, exact namespaces or namespace glob prefixes rule the identity out. Refuses (throws) a rule that breaks the trust tiers
 * even if it got past configuration validation: the invariant is enforced where it is used.
 */
export function compileRules(rules: readonly RuleConfig[], options: { readonly index?: boolean } = {}): CompiledRules {
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
  const frozen = Object.freeze(compiled);
  return Object.freeze({
    rules: frozen,
    version,
    needs: Object.freeze(needs),
    ...(options.index !== false && { index: buildIndex(frozen) }),
  });
}
