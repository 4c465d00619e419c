import type { TemplateView } from './argo-model.js';
import { literalMessage } from './check-literals.js';
import { checkNamedValue, findCredentialLiterals, namesCredential } from './credential-patterns.js';
import { FIX_GATEWAY_SECRET, FIX_HTTP_TEMPLATE, offsetOf, report, type LintContext } from './lint-context.js';
import { findBrokerCall } from './script-text.js';
import { nodeStart } from './source-map.js';

/**
 * HTTP templates: literals in the URL, body and headers, headers taken from a Secret, and calls to the broker,
 * which an HTTP template cannot make (it runs in the Argo agent pod, which mounts no template volume).
 */
export function checkHttp(context: LintContext, template: TemplateView): void {
  const http = template.http;
  if (http === undefined) return;
  for (const [scalar, where] of [
    [http.url, 'the URL'],
    [http.body, 'the body'],
  ] as const) {
    if (scalar === undefined) continue;
    for (const match of findCredentialLiterals(scalar.value)) {
      report(context, {
        ruleId: match.ruleId,
        offset: offsetOf(context, scalar, match.index, match.length),
        message: literalMessage(match, `${where} of the HTTP request`, template.name),
        fix: FIX_HTTP_TEMPLATE,
        template: template.name,
      });
    }
  }
  const urls = http.url === undefined ? [] : [http.url.value];
  // The grant usually sits in the body, the endpoint in the URL.
  const callsBroker = http.url !== undefined && findBrokerCall(`${http.url.value}\n${http.body?.value ?? ''}`, context.settings.brokerUrl) !== undefined;
  for (const header of http.headers) {
    if (header.value !== undefined) {
      const value = header.value;
      for (const found of checkNamedValue(header.name, value.value, ': ')) {
        report(context, {
          ruleId: found.ruleId,
          offset: found.ruleId === 'secret-named-literal' ? nodeStart(value.node) : offsetOf(context, value, found.index, found.length),
          message:
            found.ruleId === 'secret-named-literal'
              ? `HTTP header ${header.name} of template "${template.name}" has a literal value, and its name says it is a credential.`
              : literalMessage(found, `HTTP header ${header.name}`, template.name),
          fix: found.context.includes('x-tyk-authorization') ? FIX_GATEWAY_SECRET : FIX_HTTP_TEMPLATE,
          template: template.name,
        });
      }
    }
    const ref = header.secretKeyRef;
    if (ref !== undefined && !callsBroker && urls.length > 0 && credentialFromSecret(header.name, ref.key)) {
      report(context, {
        ruleId: 'secret-credential-to-gateway',
        offset: nodeStart(header.node),
        message: `HTTP template "${template.name}" sends header ${header.name} from Secret ${secretName(ref)} to ${hostOf(urls[0] ?? '')}.`,
        fix: FIX_HTTP_TEMPLATE,
        template: template.name,
      });
    }
  }
  if (callsBroker && http.url !== undefined) {
    report(context, {
      ruleId: 'broker-call-without-projected-token',
      offset: nodeStart(http.url.node),
      message: `HTTP template "${template.name}" calls the broker, but HTTP templates run in the Argo agent pod, which mounts no projected service-account token.`,
      fix: FIX_HTTP_TEMPLATE,
      template: template.name,
    });
  }
}

/** True when a Secret-sourced value is a credential, by its own name or by the Secret key's. */
export function credentialFromSecret(name: string, key: string | undefined): boolean {
  return namesCredential(name, '') || (key !== undefined && namesCredential(key, ''));
}

/** `secret/key` for messages. */
export function secretName(ref: { name: string | undefined; key: string | undefined }): string {
  return `${ref.name ?? '?'}/${ref.key ?? '?'}`;
}

/** The host of a URL, for messages (the path may carry data). */
export function hostOf(url: string): string {
  const match = /^https?:\/\/([^/?#]+)/i.exec(url);
  return match?.[1] ?? url;
}
