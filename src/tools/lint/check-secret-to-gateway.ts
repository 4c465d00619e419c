import type { ContainerView, TemplateView } from './argo-model.js';
import { credentialFromSecret, hostOf, secretName } from './check-http-template.js';
import { environmentPlan } from './check-literals.js';
import { runText } from './container-text.js';
import { report, type LintContext } from './lint-context.js';
import { brokerBaseUrl, findUrls, mentionsVariable } from './script-text.js';
import { nodeStart } from './source-map.js';

/**
 * secret-credential-to-gateway: a container sends a credential from a Secret (secretKeyRef) to an HTTP endpoint
 * other than the broker. A warning: the Secret keeps it out of the template, but it is long-lived and shared.
 */
export function checkSecretToGateway(context: LintContext, template: TemplateView, container: ContainerView): void {
  const text = runText(container).map((scalar) => scalar.value).join('\n');
  const envText = container.env.map((variable) => variable.value?.value ?? '').join('\n');
  const base = context.settings.brokerUrl === undefined ? undefined : brokerBaseUrl(context.settings.brokerUrl).toLowerCase();
  const urls = findUrls(`${text}\n${envText}`)
    .map((found) => found.url)
    .filter((url) => (base === undefined || !url.toLowerCase().startsWith(base)) && !/\/token$/.test(url.replace(/\/+$/, '')));
  if (urls.length === 0) return;
  for (const variable of container.env) {
    const ref = variable.secretKeyRef;
    if (ref === undefined || !credentialFromSecret(variable.name, ref.key) || !mentionsVariable(text, variable.name)) continue;
    const plan = environmentPlan(context, template, container, variable);
    report(context, {
      ruleId: 'secret-credential-to-gateway',
      offset: nodeStart(variable.node),
      message: `Template "${template.name}" sends ${variable.name} (from Secret ${secretName(ref)}) to ${hostOf(urls[0] ?? '')}: a long-lived credential shared through a Secret.`,
      fix:
        plan === undefined
          ? 'Exchange the projected service-account token at the broker for each call instead of the key in the Secret.'
          : 'Exchange the projected service-account token at the broker for each call instead of the key in the Secret (--suggest shows the change).',
      template: template.name,
      plan,
    });
  }
}
