import type { ContainerView, TemplateView } from './argo-model.js';
import { scriptLanguage, shellScript, variablesOf } from './container-text.js';
import { mountedTokens } from './fix-plan.js';
import { offsetOf, report, type LintContext } from './lint-context.js';
import { findBrokerCall, findReadOnceTraps, findTokenReads, looksLikeTokenFile, shellFunctions } from './script-text.js';

/**
 * broker-token-read-once: a script that keeps the projected token, or the broker's access token, in a variable
 * and uses it after a loop or sleep presents an expired token once the step outlives it.
 */
export function checkReadOnce(context: LintContext, template: TemplateView, container: ContainerView): void {
  const language = scriptLanguage(container);
  const script = language === 'shell' ? shellScript(container) : container.source;
  if (language === undefined || script === undefined) return;
  const projectedFiles = new Set(mountedTokens(container, template, context.workflow).map((token) => token.file));
  const variables = variablesOf(container);
  // What a right-hand side yields: a call's output, never a value that merely names the broker (BROKER_URL=...).
  const callsBroker = (text: string): boolean => findBrokerCall(text, context.settings.brokerUrl) !== undefined;
  const readsToken = (text: string): boolean => findTokenReads(text, variables).some((read) => looksLikeTokenFile(read.path, projectedFiles));
  const functions = language === 'shell' ? shellFunctions(script.value) : new Map<string, string>();
  const calls = (rhs: string, name: string): boolean => new RegExp(`\\$\\(\\s*${name}(?![A-Za-z0-9_])`).test(rhs);
  const source = (rhs: string): 'broker' | 'file' | undefined => {
    const substitutes = /\$\(|`|\w\(/.test(rhs);
    if ((substitutes && callsBroker(rhs)) || [...functions].some(([name, body]) => calls(rhs, name) && callsBroker(body))) return 'broker';
    if (readsToken(rhs) || [...functions].some(([name, body]) => calls(rhs, name) && readsToken(body))) return 'file';
    return undefined;
  };
  for (const trap of findReadOnceTraps(script.value, language, (rhs) => source(rhs) !== undefined)) {
    const line = script.value.slice(trap.index).split('\n', 1)[0] ?? '';
    const what = source(line.slice(line.indexOf('=') + 1)) === 'broker' ? "the broker's access token" : 'the projected token';
    report(context, {
      ruleId: 'broker-token-read-once',
      offset: offsetOf(context, script, trap.index, Math.min(line.length, trap.variable.length)),
      message: `Template "${template.name}" keeps ${what} in ${trap.variable} and still uses it after the ${trap.reason} on script line ${trap.laterLine}: it expires while the step runs.`,
      fix: 'Read the token file and exchange it for each call (inside the loop), not once at the top of the script.',
      template: template.name,
    });
  }
}
