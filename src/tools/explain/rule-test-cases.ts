import { z } from 'zod';
import { REASON_CODES, type ReasonCode } from '../../server/errors.js';
import { formatPath, type ConfigProblem } from '../../server/config/validate-config.js';
import { parseIdentityFixture, problemsOf, type IdentityFixture } from './identity-fixture.js';
import type { DeniedOutcome, GrantedOutcome } from '../../server/explain/explain-decision.js';

/**
 * A file of expectations about the rules, for `token-broker test-rules`: each case names an identity (a fixture
 * inline, or `{file: PATH}` relative to the cases file), optionally a scope and an audience, and what the broker
 * must answer: exactly these policies, or a denial with this reason code.
 */

const expectationSchema = z
  .strictObject({
    policies: z.array(z.string().min(1)).min(1).optional().describe('The policies the token must carry, in any order.'),
    denied: z
      .enum(REASON_CODES, {
        error: 'must be a reason code of POST /token, such as no_matching_rule, scope_not_granted, audience_not_allowed, missing_claim, not_pod_bound or workflow_completed',
      })
      .optional()
      .describe('The reason code POST /token must refuse with.'),
  })
  .superRefine((expect, ctx) => {
    const given = [expect.policies, expect.denied].filter((v) => v !== undefined).length;
    if (given !== 1) ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of policies or denied' });
  });

const caseSchema = z.strictObject({
  name: z.string().min(1),
  // Checked separately, so that its problems carry the fixture's own paths.
  identity: z.unknown(),
  scope: z
    .union([z.string(), z.array(z.string().regex(/^\S+$/, 'must be a policy ID without spaces')).min(1)])
    .optional()
    .describe('The `scope` parameter: space-separated, or a list.'),
  audience: z.string().min(1).optional(),
  resource: z.string().optional().describe('The `resource` parameter (RFC 8707), a URL of the gateway; judged as POST /token judges it.'),
  expect: expectationSchema,
});

const casesFileSchema = z.strictObject({ cases: z.array(caseSchema).min(1) });

export type CaseExpectation =
  | { readonly policies: readonly string[] }
  | { readonly denied: ReasonCode };

/** One case, validated; its identity is inline or still to be read from `file`. */
export interface RuleTestCase {
  readonly name: string;
  readonly identity: { readonly fixture: IdentityFixture } | { readonly file: string };
  /** Where the identity sits, for the paths of problems found later (an unknown issuer). */
  readonly identityPath: readonly PropertyKey[];
  readonly scope: readonly string[] | undefined;
  readonly audience: string | undefined;
  /** As written: parsed when the case runs, so that a case may expect malformed_resource. */
  readonly resource?: string | undefined;
  readonly expect: CaseExpectation;
}

function isFileReference(value: unknown): value is { file: unknown } {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && 'file' in value;
}

/** Validates a parsed cases document, collecting every problem with its path. Pure. */
export function parseRuleTestCases(
  document: unknown,
): { readonly ok: true; readonly cases: readonly RuleTestCase[] } | { readonly ok: false; readonly problems: readonly ConfigProblem[] } {
  const parsed = casesFileSchema.safeParse(document);
  if (!parsed.success) return { ok: false, problems: problemsOf(parsed.error, []) };
  const problems: ConfigProblem[] = [];
  const cases: RuleTestCase[] = [];
  const names = new Set<string>();
  parsed.data.cases.forEach((entry, i) => {
    const path = ['cases', i];
    if (names.has(entry.name)) problems.push({ path: formatPath([...path, 'name']), message: `duplicate case name "${entry.name}"` });
    names.add(entry.name);
    const identityPath = [...path, 'identity'];
    let identity: RuleTestCase['identity'] | undefined;
    if (isFileReference(entry.identity)) {
      if (typeof entry.identity.file === 'string' && entry.identity.file !== '') identity = { file: entry.identity.file };
      else problems.push({ path: formatPath([...identityPath, 'file']), message: 'must be the path of an identity fixture file' });
    } else {
      const fixture = parseIdentityFixture(entry.identity, identityPath);
      if (fixture.ok) identity = { fixture: fixture.fixture };
      else problems.push(...fixture.problems);
    }
    let scope: string[] | undefined;
    if (typeof entry.scope === 'string') {
      scope = entry.scope.split(' ').filter((s) => s !== '');
      if (scope.length === 0) problems.push({ path: formatPath([...path, 'scope']), message: 'is empty' });
    } else if (entry.scope !== undefined) {
      scope = [...entry.scope];
    }
    const expect: CaseExpectation = entry.expect.denied !== undefined ? { denied: entry.expect.denied } : { policies: entry.expect.policies ?? [] };
    if (identity !== undefined) cases.push({
        name: entry.name,
        identity,
        identityPath,
        scope,
        audience: entry.audience,
        ...(entry.resource !== undefined && { resource: entry.resource }),
        expect,
      });
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, cases };
}

/**
 * Compares what the broker would answer with what a case expects. Undefined when they agree; otherwise what
 * differed, in one line. Policies compare as sets: Tyk applies them as a set. Pure.
 */
export function caseMismatch(expect: CaseExpectation, outcome: GrantedOutcome | DeniedOutcome): string | undefined {
  const got = outcome.decision === 'granted' ? `granted [${outcome.policies.join(' ')}]` : `denied ${outcome.reason} (${outcome.description})`;
  if ('denied' in expect) {
    if (outcome.decision === 'denied' && outcome.reason === expect.denied) return undefined;
    return `expected denied ${expect.denied}, got ${got}`;
  }
  const wanted = `expected policies [${expect.policies.join(' ')}]`;
  if (outcome.decision === 'denied') return `${wanted}, got ${got}`;
  const actual = new Set(outcome.policies);
  const expected = new Set(expect.policies);
  const missing = [...expected].filter((policy) => !actual.has(policy));
  const unexpected = [...actual].filter((policy) => !expected.has(policy));
  if (missing.length === 0 && unexpected.length === 0) return undefined;
  const differences = [
    ...(missing.length > 0 ? [`missing ${missing.join(' ')}`] : []),
    ...(unexpected.length > 0 ? [`unexpected ${unexpected.join(' ')}`] : []),
  ];
  return `${wanted}, got ${got}: ${differences.join('; ')}`;
}
