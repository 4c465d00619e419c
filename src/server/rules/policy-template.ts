import type { WorkloadIdentity } from '../identity/workload-identity.js';

/** A policy as configured: a literal ID, or a template whose variables are filled per request. */
export type PolicyTemplate =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'template'; readonly source: string; readonly parts: readonly TemplatePart[] };

export type TemplatePart = { readonly text: string } | { readonly variable: TemplateVariable };

/**
 * Variables a policy template may read: only values set by the cluster's or namespace's administrators.
 * Pod labels, annotations and the workflow name are chosen by whoever submits a workflow, so no template
 * can read them: a submitter must never be able to name the policy they get.
 */
export type TemplateVariable =
  | { readonly source: 'issuer' | 'namespace' | 'serviceAccount' }
  | { readonly source: 'namespace.labels' | 'serviceAccount.labels'; readonly key: string };

const VARIABLE = /\{([^{}]*)\}/g;

/** Parses a policy; throws with a message naming the offending variable. Pure. */
export function parsePolicyTemplate(source: string): PolicyTemplate {
  if (!source.includes('{') && !source.includes('}')) return { kind: 'literal', value: source };
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of source.matchAll(VARIABLE)) {
    if (match.index > last) parts.push({ text: source.slice(last, match.index) });
    parts.push({ variable: parseVariable(match[1] ?? '') });
    last = match.index + match[0].length;
  }
  if (last < source.length) parts.push({ text: source.slice(last) });
  for (const part of parts) {
    if ('text' in part && /[{}]/.test(part.text)) throw new Error(`unbalanced braces in "${source}"`);
  }
  return { kind: 'template', source, parts };
}

function parseVariable(name: string): TemplateVariable {
  if (name === 'issuer' || name === 'namespace' || name === 'serviceAccount') return { source: name };
  const label = /^(namespace|serviceAccount)\.labels\.(.+)$/.exec(name);
  if (label) return { source: label[1] === 'namespace' ? 'namespace.labels' : 'serviceAccount.labels', key: label[2] ?? '' };
  throw new Error(
    `{${name}} cannot be used in a policy: templates may read only {issuer}, {namespace}, {serviceAccount}, {namespace.labels.KEY} and {serviceAccount.labels.KEY} (values set by administrators, never by a workflow's submitter)`,
  );
}

/** What a template produced: a policy ID, or why it could not produce one. */
export type ExpansionResult = { readonly ok: true; readonly policy: string } | { readonly ok: false; readonly reason: string };

function ownLabel(labels: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  return labels !== undefined && Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** Policy IDs Tyk can hold and that cannot smuggle glob or template syntax into later checks. */
const SAFE_POLICY_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fills a template in one pass (a value is never expanded again) and checks the result is a plain policy ID.
 * A missing variable gives a reason, not an exception: the rule then contributes nothing for it. Pure.
 */
export function expandPolicyTemplate(template: PolicyTemplate, identity: WorkloadIdentity): ExpansionResult {
  if (template.kind === 'literal') return { ok: true, policy: template.value };
  let out = '';
  for (const part of template.parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const { variable } = part;
    let value: string | undefined;
    switch (variable.source) {
      case 'issuer':
        value = identity.issuerName;
        break;
      case 'namespace':
        value = identity.namespace;
        break;
      case 'serviceAccount':
        value = identity.serviceAccount;
        break;
      // Own labels only: {namespace.labels.constructor} must not read Object.prototype.constructor.
      case 'namespace.labels':
        value = ownLabel(identity.cluster?.namespaceLabels, variable.key);
        break;
      case 'serviceAccount.labels':
        value = ownLabel(identity.cluster?.serviceAccountLabels, variable.key);
        break;
    }
    if (value === undefined || value === '') {
      const name = 'key' in variable ? `${variable.source}.${variable.key}` : variable.source;
      return { ok: false, reason: `template "${template.source}": {${name}} has no value` };
    }
    out += value;
  }
  if (!SAFE_POLICY_ID.test(out)) return { ok: false, reason: `template "${template.source}" produced "${out.slice(0, 80)}", not a plain policy ID` };
  return { ok: true, policy: out };
}
