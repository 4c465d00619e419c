import type { ContainerView, EnvView, ParameterView, ScalarView, TemplateView } from './argo-model.js';
import { describeScalar, runText, samePath, shellScript } from './container-text.js';
import { checkNamedValue, findCredentialLiterals, type CredentialMatch } from './credential-patterns.js';
import { ensureProjectedToken, type FixPlan, type ScalarReplacement } from './fix-plan.js';
import {
  FIX_EXCHANGE,
  FIX_EXCHANGE_MANUAL,
  FIX_GATEWAY_SECRET,
  FIX_NAMED_LITERAL,
  FIX_PARAMETER,
  offsetOf,
  report,
  type LintContext,
} from './lint-context.js';
import type { RuleId } from './lint-rules.js';
import { commandSubstitution, exchangeCommand, mentionsVariable, quoteContextAt, variableReferences } from './script-text.js';
import { nodeStart } from './source-map.js';

/** Credentials written into containers and parameters, and the fixes that replace them with a broker exchange. */

/** The message of a literal credential, by rule. */
export function literalMessage(match: { ruleId: RuleId; context: string; byName?: boolean }, where: string, template: string | undefined): string {
  const owner = template === undefined ? '' : ` of template "${template}"`;
  switch (match.ruleId) {
    case 'literal-jwt':
      return `A JWT is written into ${where}${owner}.`;
    case 'literal-bearer-token':
      return `A literal bearer token is sent in ${match.context} in ${where}${owner}.`;
    case 'literal-tyk-key':
      return match.byName === true
        ? `A Tyk-key-shaped literal is the value of ${where}${owner}.`
        : `A Tyk-key-shaped literal is written next to ${match.context} in ${where}${owner}.`;
    default:
      return `A literal credential is written in ${where}${owner}.`;
  }
}

/** Replace the literal in a shell script with a broker exchange, mounting the projected token if needed. */
function literalPlan(context: LintContext, template: TemplateView, container: ContainerView, scalar: ScalarView, match: CredentialMatch): FixPlan | undefined {
  const script = shellScript(container);
  if (script === undefined || !samePath(script.path, scalar.path) || match.context.includes('x-tyk-authorization')) return undefined;
  const token = ensureProjectedToken(container, template, context.workflow, context.settings.audience);
  if (token === undefined) return undefined;
  const command = exchangeCommand(context.settings.suggestedBrokerUrl, token.file);
  const text = commandSubstitution(command, quoteContextAt(scalar.value, match.index));
  return { edits: [...token.edits, { op: 'replace-in-scalar', path: scalar.path, replacements: [{ index: match.index, length: match.length, text }] }] };
}

/**
 * Replace every shell reference to an environment variable that held a credential with a broker exchange and
 * drop the variable. Only when the shell script is the one place the variable is used.
 */
export function environmentPlan(context: LintContext, template: TemplateView, container: ContainerView, variable: EnvView): FixPlan | undefined {
  const script = shellScript(container);
  if (script === undefined) return undefined;
  const references = variableReferences(script.value, variable.name);
  if (references.length === 0) return undefined;
  // A Gateway secret sent as x-tyk-authorization is not replaced by a broker token (FIX_GATEWAY_SECRET).
  const lineBefore = (index: number): string => script.value.slice(0, index).split('\n').at(-1) ?? '';
  if (references.some((reference) => /x-tyk-authorization['"]?\s*:\s*['"]?$/i.test(lineBefore(reference.index)))) return undefined;
  const elsewhere = runText(container).some((scalar) => scalar !== script && mentionsVariable(scalar.value, variable.name));
  const inOtherEnv = container.env.some((other) => other !== variable && other.value !== undefined && mentionsVariable(other.value.value, variable.name));
  if (elsewhere || inOtherEnv) return undefined;
  const token = ensureProjectedToken(container, template, context.workflow, context.settings.audience);
  if (token === undefined) return undefined;
  const command = exchangeCommand(context.settings.suggestedBrokerUrl, token.file);
  const replacements: ScalarReplacement[] = references.map((reference) => ({
    index: reference.index,
    length: reference.length,
    text: commandSubstitution(command, quoteContextAt(script.value, reference.index)),
  }));
  return {
    edits: [
      ...token.edits,
      { op: 'replace-in-scalar', path: script.path, replacements },
      { op: 'remove-item', path: variable.listPath, index: variable.index },
    ],
  };
}

/** literal-jwt, literal-bearer-token, literal-tyk-key and secret-named-literal in a container's command, args, source and environment. */
export function checkContainerLiterals(context: LintContext, template: TemplateView, container: ContainerView): void {
  for (const scalar of runText(container)) {
    for (const match of findCredentialLiterals(scalar.value)) {
      const plan = literalPlan(context, template, container, scalar, match);
      report(context, {
        ruleId: match.ruleId,
        offset: offsetOf(context, scalar, match.index, match.length),
        message: literalMessage(match, describeScalar(container, scalar), template.name),
        fix: match.context.includes('x-tyk-authorization') ? FIX_GATEWAY_SECRET : plan !== undefined ? FIX_EXCHANGE : FIX_EXCHANGE_MANUAL,
        template: template.name,
        plan,
      });
    }
  }
  for (const variable of container.env) {
    if (variable.value === undefined) continue;
    const value = variable.value;
    for (const found of checkNamedValue(variable.name, value.value, '=')) {
      const plan = environmentPlan(context, template, container, variable);
      const where = `environment variable ${variable.name}`;
      const message =
        found.ruleId === 'secret-named-literal'
          ? `Environment variable ${variable.name} of template "${template.name}" has a literal value, and its name says it is a credential.`
          : literalMessage(found, where, template.name);
      report(context, {
        ruleId: found.ruleId,
        offset: found.ruleId === 'secret-named-literal' ? nodeStart(value.node) : offsetOf(context, value, found.index, found.length),
        message,
        fix: found.context.includes('x-tyk-authorization')
          ? FIX_GATEWAY_SECRET
          : plan !== undefined
            ? FIX_EXCHANGE
            : found.ruleId === 'secret-named-literal'
              ? FIX_NAMED_LITERAL
              : FIX_EXCHANGE_MANUAL,
        template: template.name,
        plan,
      });
    }
  }
}

/** The same literals in parameter values and defaults (workflow arguments, template inputs, step and task arguments). */
export function checkParameters(context: LintContext, parameters: readonly ParameterView[], template: string | undefined): void {
  for (const parameter of parameters) {
    for (const value of parameter.values) {
      for (const found of checkNamedValue(parameter.name, value.value, '=')) {
        const owner = template === undefined ? '' : ` of template "${template}"`;
        const message =
          found.ruleId === 'secret-named-literal'
            ? `Parameter "${parameter.name}" (${parameter.role}${owner}) has a literal value, and its name says it is a credential.`
            : literalMessage(found, `parameter "${parameter.name}" (${parameter.role})`, template);
        report(context, {
          ruleId: found.ruleId,
          offset: found.ruleId === 'secret-named-literal' ? nodeStart(value.node) : offsetOf(context, value, found.index, found.length),
          message,
          fix: FIX_PARAMETER,
          template,
        });
      }
    }
  }
}
