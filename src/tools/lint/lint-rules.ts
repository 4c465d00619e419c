/**
 * The catalogue of `token-broker lint` rules: every stable rule id with its severity and the help text that the
 * text output, the JSON output and SARIF (`tool.driver.rules`) share. Rule ids are part of the interface: CI
 * configurations and code-scanning alerts refer to them, so they are never renamed.
 */

export type Severity = 'error' | 'warning' | 'note';

/** Orders severities for `--fail-on`: a finding fails the run when its rank is at least the threshold's. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { note: 1, warning: 2, error: 3 };

export type RuleId =
  | 'invalid-yaml'
  | 'literal-jwt'
  | 'literal-bearer-token'
  | 'literal-tyk-key'
  | 'secret-named-literal'
  | 'secret-credential-to-gateway'
  | 'broker-call-without-projected-token'
  | 'broker-token-wrong-audience'
  | 'broker-token-read-once'
  | 'legacy-service-account-token';

export interface LintRule {
  readonly id: RuleId;
  /** PascalCase name (SARIF reportingDescriptor.name). */
  readonly name: string;
  readonly severity: Severity;
  /** One sentence: what the rule finds. */
  readonly summary: string;
  /** Why it matters and how to fix it, for SARIF `help` and the documentation. */
  readonly help: string;
  /**
   * GitHub code scanning's `security-severity` (0.0-10.0): it ranks security alerts by it. Literal credentials
   * are critical (anyone who can read the template holds them); the rest are misconfigurations.
   */
  readonly securitySeverity: string;
}

export const LINT_RULES: readonly LintRule[] = [
  {
    id: 'invalid-yaml',
    name: 'InvalidYaml',
    severity: 'error',
    summary: 'The file is not valid YAML, so none of its documents could be checked.',
    help: 'Fix the syntax error at the reported line. Templated manifests (Helm, Jsonnet) must be rendered before linting.',
    securitySeverity: '1.0',
  },
  {
    id: 'literal-jwt',
    name: 'LiteralJwt',
    severity: 'error',
    summary: 'A JWT is written into the workflow (three base64url segments starting eyJ).',
    help:
      'A token in a template is readable by everyone who can read the template, the workflow history and the pod spec, ' +
      'and it is valid until it expires, whoever presents it. Mount a projected service-account token with the ' +
      "broker's audience and exchange it at the broker for each call (token-broker lint --suggest shows the change).",
    securitySeverity: '9.0',
  },
  {
    id: 'literal-bearer-token',
    name: 'LiteralBearerToken',
    severity: 'error',
    summary: 'An Authorization: Bearer header carries a literal token.',
    help:
      'Replace the literal with a token obtained at run time: exchange the projected service-account token at the ' +
      'broker (curl -H "Authorization: Bearer $(cat /var/run/secrets/token-broker/token)" BROKER/token), for each call.',
    securitySeverity: '9.0',
  },
  {
    id: 'literal-tyk-key',
    name: 'LiteralTykKey',
    severity: 'error',
    summary: 'A Tyk-key-shaped literal sits next to an Authorization or x-tyk-authorization header, or in a value named like a key.',
    help:
      'Static Tyk keys never expire on their own and identify no workload. Let the step exchange its projected ' +
      'service-account token at the broker for a short-lived credential instead. A Gateway secret ' +
      '(x-tyk-authorization) belongs in a Secret mounted as a file, never in a template.',
    securitySeverity: '9.0',
  },
  {
    id: 'secret-named-literal',
    name: 'SecretNamedLiteral',
    severity: 'error',
    summary: 'An environment variable, HTTP header or parameter named like a token, key, secret or password has a literal value.',
    help:
      'Credentials do not belong in templates. For API access, exchange the projected service-account token at the ' +
      'broker; for anything else, reference a Secret (valueFrom.secretKeyRef) or mount it as a file.',
    securitySeverity: '7.5',
  },
  {
    id: 'secret-credential-to-gateway',
    name: 'SecretCredentialToGateway',
    severity: 'warning',
    summary: 'A step sends a credential taken from a Kubernetes Secret (secretKeyRef) to an HTTP endpoint.',
    help:
      'A long-lived key in a Secret is shared by every workflow that can read the Secret and is never rotated by ' +
      'the platform. Exchange the projected service-account token at the broker instead: the credential is then ' +
      'short-lived and tied to the workload.',
    securitySeverity: '5.0',
  },
  {
    id: 'broker-call-without-projected-token',
    name: 'BrokerCallWithoutProjectedToken',
    severity: 'error',
    summary: 'A step calls the broker but sends no projected service-account token mounted in its container.',
    help:
      'Add a projected volume (serviceAccountToken with the broker audience, expirationSeconds 600) to the template ' +
      'and mount it in the container that calls the broker; read the file for each call. The default token ' +
      "(/var/run/secrets/kubernetes.io/serviceaccount/token) has the API server's audience and is refused. " +
      'HTTP templates run in the Argo agent, which mounts no template volumes: call the broker from a container step.',
    securitySeverity: '4.0',
  },
  {
    id: 'broker-token-wrong-audience',
    name: 'BrokerTokenWrongAudience',
    severity: 'error',
    summary: 'The projected token sent to the broker has another audience than the broker accepts.',
    help:
      'The broker refuses subject tokens whose aud does not contain its configured audience (audience_mismatch). ' +
      'Set serviceAccountToken.audience to the broker audience (token-broker lint --audience, default tyk-token-broker).',
    securitySeverity: '4.0',
  },
  {
    id: 'broker-token-read-once',
    name: 'BrokerTokenReadOnce',
    severity: 'warning',
    summary: 'A script reads the projected token (or exchanges it) once into a variable and keeps using it after a loop or sleep.',
    help:
      "The kubelet rewrites the projected token before it expires, and the broker's token expires too: a step " +
      'that keeps either in a variable presents an expired token once it outlives it. Read the file (and exchange ' +
      'it) for each call, e.g. inside the loop.',
    securitySeverity: '3.0',
  },
  {
    id: 'legacy-service-account-token',
    name: 'LegacyServiceAccountToken',
    severity: 'error',
    summary: 'A step that calls the broker would send a legacy Secret-based service-account token.',
    help:
      "With automountServiceAccountToken: false and executor.serviceAccountName set, Argo mounts the executor's " +
      'legacy token Secret (no expiry, no audience) instead of a bound token; the broker refuses legacy tokens ' +
      '(legacy_token). Mount a projected service-account token with the broker audience and send that file.',
    securitySeverity: '4.0',
  },
];

const RULES_BY_ID: ReadonlyMap<RuleId, LintRule> = new Map(LINT_RULES.map((rule) => [rule.id, rule]));

/** The catalogue entry of a rule id. */
export function lintRule(id: RuleId): LintRule {
  const rule = RULES_BY_ID.get(id);
  if (rule === undefined) throw new Error(`unknown lint rule ${id}`);
  return rule;
}
