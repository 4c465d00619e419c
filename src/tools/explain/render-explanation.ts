import type { Explanation, ExplanationVerification, RefusalExplanation } from '../../server/explain/explain-decision.js';

const BANNERS: Record<ExplanationVerification, string | undefined> = {
  verified: undefined,
  'unverified: decoded offline': '*** unverified: decoded offline. NOBODY CHECKED THIS TOKEN: not its signature, its pod or its labels. ***',
  'identity fixture': '*** IDENTITY FIXTURE: not a token. Labels and pod state are what the fixture says. ***',
};

function list(values: readonly string[] | undefined, empty = '(none)'): string {
  return values === undefined || values.length === 0 ? empty : values.join(' ');
}

function row(label: string, value: string): string {
  return `  ${label.padEnd(17)}${value}`;
}

function header(verification: ExplanationVerification): string[] {
  const banner = BANNERS[verification];
  return banner === undefined ? [] : [banner, ''];
}

function notes(lines: readonly string[]): string[] {
  return lines.length === 0 ? [] : ['', 'Notes', ...lines.map((note) => `  - ${note}`)];
}

/**
 * An explanation as text for a human at a terminal: identity, every rule, policies, outcome, and, for a grant,
 * `routes`: what the granted policies open at Tyk (see tyk/opened-routes.ts), one line per API. Pure.
 */
export function renderExplanation(explanation: Explanation | RefusalExplanation, routes: readonly string[] = []): string {
  if (!('identity' in explanation)) {
    const { outcome } = explanation;
    return [
      ...header(explanation.verification),
      `Outcome: DENIED (${outcome.reason}) before any rule was applied`,
      row('description', outcome.description),
      ...notes(explanation.notes),
    ].join('\n');
  }

  const { identity, request, outcome } = explanation;
  const sets = identity.labelSets;
  const available = (on: boolean): string => (on ? 'yes' : 'not looked up');
  const lines: string[] = [
    ...header(explanation.verification),
    'Identity',
    row('issuer', `${identity.issuer} (${identity.issuerUrl})`),
    row('subject', identity.subject),
    row('namespace', identity.namespace ?? '(none)'),
    row('service account', identity.serviceAccount ?? '(none)'),
    row('pod', identity.pod ?? '(none)'),
    row('workflow', identity.workflow ?? '(none)'),
    row('node', identity.node ?? '(none)'),
    row('labels', `namespace ${available(sets.namespaceLabels)}, service account ${available(sets.serviceAccountLabels)}`),
    row('', `pod ${available(sets.podLabels)}, pod annotations ${available(sets.podAnnotations)}`),
    '',
    'Request',
    row('scope', request.scope === undefined ? '(not given: every granted policy)' : list(request.scope)),
    // Shown only when asked for: most exchanges name no resource, and their explanation reads as before.
    ...(request.resource === undefined ? [] : [row('resource', request.resource)]),
    row('audience', request.audience),
    '',
    'Rules',
  ];
  const width = Math.max(0, ...explanation.rules.map((rule) => rule.name.length));
  for (const rule of explanation.rules) {
    const mark = rule.matched ? 'MATCH   ' : 'no match';
    const why = rule.matched ? '' : `: ${rule.reason ?? ''}`;
    lines.push(`  ${mark} ${rule.name.padEnd(width)} [${rule.tier}]${why}`);
    for (const dropped of rule.dropped ?? []) lines.push(`           dropped: ${dropped}`);
  }
  lines.push('', 'Policies', row('granted', list(explanation.granted)), row('requestable', list(explanation.requestable)), '');
  if (outcome.decision === 'granted') {
    lines.push(
      'Outcome: GRANTED',
      row('policies', list(outcome.policies)),
      row('audience', outcome.audience),
      row('ttl', `${outcome.ttlSeconds}s`),
      ...routes.map((line, i) => row(i === 0 ? 'routes' : '', line)),
      '  claims',
      ...JSON.stringify(outcome.claims, null, 2)
        .split('\n')
        .map((line) => `    ${line}`),
    );
  } else {
    lines.push(`Outcome: DENIED (${outcome.reason})`, row('description', outcome.description));
  }
  lines.push(...notes(explanation.notes));
  return lines.join('\n');
}
