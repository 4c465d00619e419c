import { createHash } from 'node:crypto';
import { compileGlobs, type GlobMatcher } from './glob.js';
import { parseJsonPointer } from './json-pointer.js';
import type { RuleConfig } from '../config/schema.js';

export interface CompiledClaimCondition {
  readonly pointer: string;
  readonly tokens: readonly string[];
  readonly pattern: string;
  readonly matches: GlobMatcher;
}

/** A rule with its globs compiled, ready for pure matching. */
export interface CompiledRule {
  readonly name: string;
  readonly issuers: ReadonlySet<string> | undefined;
  readonly namespaces: GlobMatcher | undefined;
  readonly serviceAccounts: GlobMatcher | undefined;
  readonly claims: readonly CompiledClaimCondition[];
  readonly policies: readonly string[];
  readonly ttlSeconds: number | undefined;
  readonly source: RuleConfig;
}

/** An immutable, compiled rule set; swapped as a whole when configuration changes. */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  /** Content hash of the rules: part of every cache key, so a rule change never serves a stale grant. */
  readonly version: string;
}

/** Compiles rules once at load; matching never parses a pattern again. */
export function compileRules(rules: readonly RuleConfig[]): CompiledRules {
  const compiled = rules.map(
    (rule): CompiledRule => ({
      name: rule.name,
      issuers: rule.match.issuers ? new Set(rule.match.issuers) : undefined,
      namespaces: rule.match.namespaces ? compileGlobs(rule.match.namespaces) : undefined,
      serviceAccounts: rule.match.serviceAccounts ? compileGlobs(rule.match.serviceAccounts) : undefined,
      claims: Object.entries(rule.match.claims ?? {}).map(([pointer, pattern]) => ({
        pointer,
        tokens: parseJsonPointer(pointer),
        pattern,
        matches: compileGlobs([pattern]),
      })),
      policies: [...new Set(rule.policies)],
      ttlSeconds: rule.ttlSeconds,
      source: rule,
    }),
  );
  const version = createHash('sha256').update(JSON.stringify(rules)).digest('base64url').slice(0, 16);
  return Object.freeze({ rules: Object.freeze(compiled), version });
}
