import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openedRoutes, renderOpenedRoutes } from '../tyk-kit/opened-routes.js';
import { deniedOutcome, explainDecision, type DeniedOutcome, type GrantedOutcome } from '../../server/explain/explain-decision.js';
import { parseIdentityFixture, resolveIdentityFixture, type IdentityFixture } from '../explain/identity-fixture.js';
import { caseMismatch, parseRuleTestCases, type RuleTestCase } from '../explain/rule-test-cases.js';
import { InputError, formatProblems, loadRules, parseYamlInput, readInputFile } from './explain.js';
import type { ConfigEnvironment } from '../../server/config/load-config.js';
import { formatPath, type ConfigProblem } from '../../server/config/validate-config.js';
import { BrokerError } from '../../server/errors.js';
import { parseResourceIndicator, type ResourceIndicator } from '../../server/rules/resource-indicator.js';

/** A case's resource as POST /token parses it: the indicator, or the refusal a malformed one gets. */
function resourceOf(text: string | undefined): ResourceIndicator | BrokerError | undefined {
  if (text === undefined) return undefined;
  try {
    return parseResourceIndicator(text);
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
}

export const TEST_RULES_USAGE = `Usage: token-broker test-rules --config FILE CASES.yaml

  Checks the rules against expectations, offline: for each case, what POST /token would answer for an identity
  (and optional scope, audience and resource) must be exactly the expected policies, or a denial with the expected reason.

  CASES.yaml:
    cases:
      - name: payments runner reads and writes
        identity: {issuer: in-cluster, namespace: payments, serviceAccount: argo-workflow-runner}
        expect: {policies: [payments-read, payments-write]}
      - name: nothing for the default service account
        identity: {file: identities/default-sa.yaml}   # relative to CASES.yaml
        scope: payments-write                          # optional; also audience and resource
        expect: {denied: no_matching_rule}

Exit status: 0 every case passes; 1 a case fails, or the configuration is invalid; 2 usage error, or the cases
file (or a fixture it names) cannot be read or is invalid.`;

interface ReadyCase {
  readonly testCase: RuleTestCase;
  readonly fixture: IdentityFixture;
}

/** Reads every case's identity (inline, or a fixture file relative to the cases file); problems are input errors. */
async function loadFixtures(cases: readonly RuleTestCase[], casesPath: string): Promise<ReadyCase[]> {
  const ready: ReadyCase[] = [];
  const problems: string[] = [];
  for (const testCase of cases) {
    if ('fixture' in testCase.identity) {
      ready.push({ testCase, fixture: testCase.identity.fixture });
      continue;
    }
    const path = resolve(dirname(casesPath), testCase.identity.file);
    try {
      const parsed = parseIdentityFixture(parseYamlInput(await readInputFile(path, 'identity fixture'), path, 'identity fixture'));
      if (parsed.ok) ready.push({ testCase, fixture: parsed.fixture });
      else problems.push(formatProblems(path, 'identity fixture', parsed.problems));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      problems.push(`case "${testCase.name}": ${error.message}`);
    }
  }
  if (problems.length > 0) throw new InputError(problems.join('\n'));
  return ready;
}

/**
 * `token-broker test-rules`: one line per case, PASS or FAIL with what differed. Exit 0 when every case passes,
 * 1 when one fails (or the configuration is invalid), 2 on a usage error or unreadable or invalid cases.
 */
export async function testRules(args: readonly string[], env: ConfigEnvironment): Promise<number> {
  let configPath: string | undefined;
  let casesPath: string | undefined;
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: { config: { type: 'string', short: 'c' } }, allowPositionals: true, strict: true });
    configPath = values.config;
    casesPath = positionals.length === 1 ? positionals[0] : undefined;
  } catch (error) {
    console.error(`token-broker test-rules: ${error instanceof Error ? error.message : String(error)}\n\n${TEST_RULES_USAGE}`);
    return 2;
  }
  if (configPath === undefined || casesPath === undefined) {
    console.error(`token-broker test-rules: give --config FILE and exactly one CASES.yaml\n\n${TEST_RULES_USAGE}`);
    return 2;
  }

  try {
    const parsed = parseRuleTestCases(parseYamlInput(await readInputFile(casesPath, 'cases file'), casesPath, 'cases file'));
    if (!parsed.ok) throw new InputError(formatProblems(casesPath, 'cases file', parsed.problems));
    const ready = await loadFixtures(parsed.cases, casesPath);

    const loaded = await loadRules(configPath, env);
    if (loaded === undefined) return 1;
    const { config, rules } = loaded;
    const nowSeconds = Math.floor(Date.now() / 1000);

    // Identities that do not fit the configuration (an unknown issuer) are mistakes in the cases, not failures.
    const problems: ConfigProblem[] = [];
    const results: { name: string; mismatch: string | undefined; matched: readonly string[]; routes: readonly string[] }[] = [];
    for (const { testCase, fixture } of ready) {
      const resolution = resolveIdentityFixture(fixture, config, rules, 'file' in testCase.identity ? [] : testCase.identityPath);
      if (resolution.kind === 'problems') {
        const { identity, identityPath } = testCase;
        // A fixture file's problems carry its own paths: say which case's file they are in.
        const where = 'file' in identity ? `${formatPath(identityPath)} (${identity.file}) ` : '';
        problems.push(...resolution.problems.map((p) => ({ path: `${where}${p.path}`, message: p.message })));
        continue;
      }
      let outcome: GrantedOutcome | DeniedOutcome;
      let matched: readonly string[] = [];
      // A malformed resource is refused before the token is looked at, as POST /token refuses it.
      const resource = resourceOf(testCase.resource);
      if (resource instanceof BrokerError) {
        outcome = deniedOutcome(resource);
      } else if (resolution.kind === 'refused') {
        outcome = deniedOutcome(resolution.error);
      } else {
        const explanation = explainDecision({
          config,
          rules,
          identity: resolution.identity,
          scope: testCase.scope,
          audience: testCase.audience,
          resource,
          nowSeconds,
          verification: 'identity fixture',
        });
        outcome = explanation.outcome;
        matched = explanation.rules.filter((rule) => rule.matched).map((rule) => rule.name);
      }
      // Only with a policies block: without one the output stays what it was.
      const routes = outcome.decision === 'granted' && config.policies !== undefined ? renderOpenedRoutes(openedRoutes(outcome.policies, config.policies)) : [];
      results.push({ name: testCase.name, mismatch: caseMismatch(testCase.expect, outcome), matched, routes });
    }
    if (problems.length > 0) throw new InputError(formatProblems(casesPath, 'cases file', problems));

    for (const result of results) {
      if (result.mismatch === undefined) {
        console.log(`PASS  ${result.name}`);
      } else {
        console.log(`FAIL  ${result.name}: ${result.mismatch}; matched rules: ${result.matched.length > 0 ? result.matched.join(', ') : '(none)'}`);
      }
      for (const line of result.routes) console.log(`        ${line}`);
    }
    const failed = results.filter((result) => result.mismatch !== undefined).length;
    console.log(`\n${results.length - failed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    console.error(`token-broker test-rules: ${error.message}`);
    return 2;
  }
}
