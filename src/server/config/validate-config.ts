import { z } from 'zod';
import { brokerConfigSchema, type BrokerConfig } from './schema.js';
import { compileGlobs } from '../rules/glob.js';
import { parsePolicyTemplate } from '../rules/policy-template.js';
import { ruleTier, trustTierViolations } from '../rules/trust-tiers.js';
import { isLoopbackUrl } from '../issuers/key-origins.js';

/** One problem with a configuration, addressed by the path of the field at fault. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

export type ConfigValidation =
  | { readonly ok: true; readonly config: BrokerConfig; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/** Renders a path the way an operator would write it in the YAML: `issuers[0].audiences`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    // A key such as the JSON pointer "/kubernetes.io/pod/name" would be ambiguous after a dot: quote it.
    else if (typeof segment !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += `[${JSON.stringify(String(segment))}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(root)' : out;
}

function problemsFromZod(error: z.ZodError): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ path: formatPath([...issue.path, key]), message: 'unknown key' });
      }
    } else if (issue.code === 'invalid_key') {
      const inner = issue.issues[0]?.message ?? 'invalid key';
      problems.push({ path: formatPath(issue.path), message: `key ${inner}` });
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message.replace(/^Invalid input: /, '') });
    }
  }
  return problems;
}


/** Rules that span fields: references, uniqueness, lifetimes, transport security. */
function crossFieldProblems(config: BrokerConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: readonly PropertyKey[], message: string) => problems.push({ path: formatPath(path), message });

  if (config.admin !== undefined && config.admin.port === config.server.port) {
    add(['admin', 'port'], 'must differ from server.port: the admin endpoint is never served on the public listener');
  }
  const denyIds = new Set<string>();
  config.denies.static.forEach((deny, i) => {
    if (denyIds.has(deny.id)) add(['denies', 'static', i, 'id'], `duplicate deny id "${deny.id}"`);
    denyIds.add(deny.id);
    if (deny.issuer !== undefined && !config.issuers.some((issuer) => issuer.name === deny.issuer)) {
      add(['denies', 'static', i, 'issuer'], `no issuer is named "${deny.issuer}"`);
    }
  });

  const issuerNames = new Set<string>();
  const issuerUrls = new Set<string>();
  config.issuers.forEach((issuer, i) => {
    if (issuerNames.has(issuer.name)) add(['issuers', i, 'name'], `duplicate issuer name "${issuer.name}"`);
    issuerNames.add(issuer.name);
    if (issuerUrls.has(issuer.issuer)) add(['issuers', i, 'issuer'], 'the same issuer URL is configured twice');
    issuerUrls.add(issuer.issuer);
    if (issuer.jwksFile !== undefined && (issuer.jwksUri !== undefined || issuer.discoveryUrl !== undefined)) {
      add(['issuers', i, 'jwksFile'], 'a static jwksFile excludes jwksUri and discoveryUrl');
    }
    issuer.jwksOrigins?.forEach((origin, j) => {
      const url = new URL(origin);
      if (`${url.origin}/` !== url.href) add(['issuers', i, 'jwksOrigins', j], `must be an origin only (scheme://host[:port]), e.g. "${url.origin}"`);
      else if (url.protocol === 'http:' && !issuer.allowInsecureHttp && !isLoopbackUrl(url)) {
        add(['issuers', i, 'jwksOrigins', j], 'plain http is only allowed on loopback; use https, or set allowInsecureHttp: true');
      }
    });
    if (issuer.jwksOrigins !== undefined && (issuer.jwksFile !== undefined || issuer.jwksUri !== undefined)) {
      add(['issuers', i, 'jwksOrigins'], 'only applies to a discovered jwks_uri: drop it when jwksUri or jwksFile is set');
    }
    for (const field of ['issuer', 'discoveryUrl', 'jwksUri'] as const) {
      const url = issuer[field];
      if (url !== undefined && url.startsWith('http:') && !issuer.allowInsecureHttp && !isLoopbackUrl(url)) {
        add(['issuers', i, field], 'plain http is only allowed on loopback; use https, or set allowInsecureHttp: true');
      }
    }
  });

  // node:http refuses to create a server otherwise, so serve would fail after check-config said OK.
  if (config.server.headersTimeoutSeconds > config.server.requestTimeoutSeconds) {
    add(['server', 'headersTimeoutSeconds'], `must not exceed server.requestTimeoutSeconds (${config.server.requestTimeoutSeconds})`);
  }
  if (config.tokens.defaultTtlSeconds > config.tokens.maxTtlSeconds) {
    add(['tokens', 'defaultTtlSeconds'], `must not exceed tokens.maxTtlSeconds (${config.tokens.maxTtlSeconds})`);
  }
  if (config.cache.refreshBeforeSeconds >= Math.min(config.tokens.defaultTtlSeconds, ...config.rules.map((r) => r.ttlSeconds ?? Infinity))) {
    add(['cache', 'refreshBeforeSeconds'], 'must be shorter than the shortest token lifetime, or no cached token could ever be served');
  }
  const forbidden = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'cid', 'clientId']);
  for (const field of ['policyClaim', 'scopeClaim', 'contextClaim'] as const) {
    if (forbidden.has(config.tokens[field])) add(['tokens', field], `"${config.tokens[field]}" is a registered or Tyk-reserved claim`);
  }
  if (new Set([config.tokens.policyClaim, config.tokens.scopeClaim, config.tokens.contextClaim]).size !== 3) {
    add(['tokens'], 'policyClaim, scopeClaim and contextClaim must be different claims');
  }
  if (config.issuers.some((issuer) => issuer.kind === 'oidc') && /\{(namespace|serviceAccount|pod|workflow|node)\}/.test(config.tokens.subject)) {
    add(['tokens', 'subject'], 'uses Kubernetes variables ({namespace}, {serviceAccount}, {pod}, {workflow}, {node}) that tokens of a kind: oidc issuer do not carry; use {issuer} and {sub}');
  }
  if (/\{(workflow|node)\}/.test(config.tokens.subject) && !kubernetesEverywhere(config)) {
    add(['tokens', 'subject'], '{workflow} and {node} are read from the pod: every issuer needs kubernetes enabled');
  }
  if (/\{workflow\}/.test(config.tokens.subject) && !/\{namespace\}/.test(config.tokens.subject)) {
    // Workflow names are chosen by submitters and unique only within a namespace: without it, one namespace could
    // name a workflow after another's and share (and drain) its Tyk rate-limit bucket.
    add(['tokens', 'subject'], '{workflow} must be qualified by {namespace}, e.g. "argo:{namespace}:{workflow}"');
  }
  const unknownVariable = /\{(?!issuer\}|namespace\}|serviceAccount\}|pod\}|sub\}|workflow\}|node\})[^}]*\}/.exec(config.tokens.subject);
  if (unknownVariable) add(['tokens', 'subject'], `unknown template variable ${unknownVariable[0]}`);
  if (config.tokens.allowedAudiences && !config.tokens.allowedAudiences.includes(config.tokens.audience)) {
    add(['tokens', 'allowedAudiences'], `must include the default audience "${config.tokens.audience}"`);
  }

  const redis = config.cache.redis;
  if (redis !== undefined && [redis.url, redis.sentinels, redis.cluster].filter((v) => v !== undefined).length > 1) {
    add(['cache', 'redis'], 'give one of url, sentinels or cluster');
  }
  if (config.audit.redisStream !== undefined && redis === undefined) {
    add(['audit', 'redisStream'], 'needs cache.redis');
  }

  const ruleNames = new Set<string>();
  config.rules.forEach((rule, i) => {
    if (ruleNames.has(rule.name)) add(['rules', i, 'name'], `duplicate rule name "${rule.name}"`);
    ruleNames.add(rule.name);
    rule.match.issuers?.forEach((issuerName, j) => {
      if (!issuerNames.has(issuerName)) add(['rules', i, 'match', 'issuers', j], `no issuer is named "${issuerName}"`);
    });
    if (rule.ttlSeconds !== undefined && rule.ttlSeconds > config.tokens.maxTtlSeconds) {
      add(['rules', i, 'ttlSeconds'], `exceeds tokens.maxTtlSeconds (${config.tokens.maxTtlSeconds})`);
    }
    for (const violation of trustTierViolations(rule)) add(['rules', i, violation.field], violation.message);
    const allowed = rule.allowedPolicies ? compileGlobs(rule.allowedPolicies) : undefined;
    for (const field of ['policies', 'requestable'] as const) {
      rule[field]?.forEach((policy, j) => {
        let template;
        try {
          template = parsePolicyTemplate(policy);
        } catch (error) {
          add(['rules', i, field, j], error instanceof Error ? error.message : String(error));
          return;
        }
        if (template.kind === 'template' && allowed === undefined) {
          add(['rules', i, 'allowedPolicies'], `required: "${policy}" is a template, and allowedPolicies bounds what it may produce`);
        }
        if (template.kind === 'literal' && allowed !== undefined && !allowed(policy)) {
          add(['rules', i, field, j], `"${policy}" is not in this rule's allowedPolicies`);
        }
      });
    }
    const { match } = rule;
    for (const selector of ['namespaceSelector', 'serviceAccountSelector', 'podSelector', 'podAnnotationSelector'] as const) {
      match[selector]?.matchExpressions?.forEach((expression, j) => {
        const path = ['rules', i, 'match', selector, 'matchExpressions', j, 'values'];
        const count = expression.values?.length ?? 0;
        if ((expression.operator === 'In' || expression.operator === 'NotIn') && count === 0) add(path, `${expression.operator} needs at least one value`);
        if ((expression.operator === 'Exists' || expression.operator === 'DoesNotExist') && count > 0) add(path, `${expression.operator} takes no values`);
      });
    }
    const needsCluster =
      match.namespaceSelector !== undefined ||
      match.serviceAccountSelector !== undefined ||
      ruleTier(rule) === 'submitter' ||
      [...(rule.policies ?? []), ...(rule.requestable ?? [])].some((p) => p.includes('.labels.'));
    const ruleIssuers = config.issuers.filter((issuer) => match.issuers === undefined || match.issuers.includes(issuer.name));
    const kubernetesFacts = kubernetesFactsReadBy(rule);
    if (kubernetesFacts.length > 0 && ruleIssuers.length > 0 && ruleIssuers.every((issuer) => issuer.kind === 'oidc')) {
      // Only an API server vouches for these; an oidc token's kubernetes.io claim is whatever its issuer wrote there.
      add(['rules', i, 'match'], `reads Kubernetes facts (${kubernetesFacts.join(', ')}) but applies only to kind: oidc issuers, whose tokens carry none: it can never match`);
    } else if (needsCluster && !ruleIssuers.some((issuer) => kubernetesOf(config, issuer)?.enabled === true)) {
      add(['rules', i, 'match'], 'reads Kubernetes labels or pod metadata, but no issuer this rule applies to has kubernetes enabled');
    }
  });
  config.issuers.forEach((issuer, i) => {
    const kubernetes = kubernetesOf(config, issuer);
    if (kubernetes?.enabled === true && issuer.kind !== 'kubernetes') {
      add(['issuers', i, 'kind'], 'kubernetes lookups need kind: kubernetes tokens (namespace, service account, pod claims)');
    }
  });
  problems.push(...apisProblems(config).map((p) => ({ path: formatPath(p.path), message: p.message })));
  return problems;
}

/**
 * The `apis` block: each API once, each URL naming one API, and `policies` present to say which policy opens
 * which API; otherwise a `resource` would be matched against something the operator did not mean.
 */
function apisProblems(config: BrokerConfig): { path: readonly PropertyKey[]; message: string }[] {
  const problems: { path: readonly PropertyKey[]; message: string }[] = [];
  if (config.apis === undefined) return problems;
  if (config.policies === undefined) {
    problems.push({ path: ['apis'], message: 'needs the policies block: it says which policies open each API, and a resource narrows to those' });
  }
  const apiIds = new Set<string>();
  const urls = new Map<string, string>();
  config.apis.forEach((api, i) => {
    if (apiIds.has(api.apiId)) problems.push({ path: ['apis', i, 'apiId'], message: `API "${api.apiId}" is listed twice; merge its urls into one entry` });
    apiIds.add(api.apiId);
    api.urls.forEach((text, j) => {
      const url = new URL(text);
      const normal = `${url.origin}${url.pathname}`;
      const other = urls.get(normal);
      if (other !== undefined) problems.push({ path: ['apis', i, 'urls', j], message: `the same URL is already API "${other}"'s` });
      else urls.set(normal, api.apiId);
    });
  });
  return problems;
}

/** The Kubernetes facts a rule reads (conditions and policy templates): only `kind: kubernetes` tokens carry them. */
function kubernetesFactsReadBy(rule: BrokerConfig['rules'][number]): string[] {
  const { match } = rule;
  const conditions = ['namespaces', 'serviceAccounts', 'namespaceSelector', 'serviceAccountSelector', 'podSelector', 'podAnnotationSelector', 'workflows'] as const;
  const fields: string[] = conditions.filter((field) => match[field] !== undefined);
  const templates = [...(rule.policies ?? []), ...(rule.requestable ?? [])];
  if (templates.some((policy) => /\{(namespace|serviceAccount)(\.labels\.[^}]*)?\}/.test(policy))) fields.push('policy templates over {namespace}/{serviceAccount}');
  return fields;
}

/** JSON pointers of a rule's claim conditions into the `kubernetes.io` claim. */
function kubernetesClaimPointers(rule: BrokerConfig['rules'][number]): string[] {
  return Object.keys(rule.match.claims ?? {}).filter((pointer) => pointer === '/kubernetes.io' || pointer.startsWith('/kubernetes.io/'));
}

/** The Kubernetes settings that apply to an issuer: its own block, else the top-level one. */
export function kubernetesOf(config: BrokerConfig, issuer: BrokerConfig['issuers'][number]): BrokerConfig['kubernetes'] {
  return issuer.kubernetes ?? (issuer.kind === 'kubernetes' ? config.kubernetes : undefined);
}

function kubernetesEverywhere(config: BrokerConfig): boolean {
  return config.issuers.every((issuer) => kubernetesOf(config, issuer)?.enabled === true);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** 127.0.0.0/8, ::1 and localhost: hosts only this machine can reach. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Settings that work but are probably a mistake, as `path: message` lines: printed by check-config and logged by
 * serve, never a reason to refuse the configuration.
 */
export function configWarnings(config: BrokerConfig): string[] {
  const warnings: string[] = [];
  const kinds = new Set(config.issuers.map((issuer) => issuer.kind));
  config.rules.forEach((rule, i) => {
    if (rule.match.issuers === undefined && kinds.size > 1) {
      warnings.push(
        `${formatPath(['rules', i, 'match', 'issuers'])}: rule "${rule.name}" names no issuer while issuers of kind kubernetes and oidc are both configured: ` +
          'it applies to the tokens of every issuer; name the issuers it is meant for',
      );
    }
    const ruleIssuers = config.issuers.filter((issuer) => rule.match.issuers === undefined || rule.match.issuers.includes(issuer.name));
    for (const pointer of kubernetesClaimPointers(rule)) {
      if (ruleIssuers.some((issuer) => issuer.kind === 'oidc')) {
        warnings.push(
          `${formatPath(['rules', i, 'match', 'claims', pointer])}: rule "${rule.name}" matches the kubernetes.io claim of kind: oidc tokens, ` +
            'which no API server checked; match namespaces or serviceAccounts of a kind: kubernetes issuer instead',
        );
      }
    }
  });
  // The admin listener is meant for kubectl port-forward; bound beyond loopback, plain HTTP carries its secret over the network.
  if (config.admin !== undefined && config.admin.tls === undefined && !isLoopbackHost(config.admin.host)) {
    warnings.push(
      `admin.host: "${config.admin.host}" is not a loopback address and admin.tls is not set: the admin bearer secret crosses the network in plain HTTP; ` +
        'keep the default 127.0.0.1 (reach it with kubectl port-forward) or set admin.tls',
    );
  }
  const { prePublishSeconds, tykJwksCacheSeconds } = config.signing;
  if (prePublishSeconds <= tykJwksCacheSeconds) {
    warnings.push(
      `signing.prePublishSeconds: ${prePublishSeconds} s is not longer than Tyk's JWKS cache (signing.tykJwksCacheSeconds ${tykJwksCacheSeconds} s): ` +
        'Tyk can refuse ("Key not authorized") tokens of a new key until its cached JWKS expires',
    );
  }
  return warnings;
}

/**
 * Validates a parsed configuration document: shape, unknown keys, defaults, then cross-field rules.
 * `requireKeysDir` is false only for the embedded dev configuration, whose key is ephemeral.
 */
export function validateConfig(input: unknown, options: { requireKeysDir: boolean } = { requireKeysDir: true }): ConfigValidation {
  const parsed = brokerConfigSchema.safeParse(input);
  if (!parsed.success) return { ok: false, problems: problemsFromZod(parsed.error) };
  const problems = crossFieldProblems(parsed.data);
  if (parsed.data.tokens.format === 'tyk-key' && parsed.data.tyk === undefined) {
    problems.push({ path: 'tyk', message: 'required when tokens.format is tyk-key: the Gateway URL and secret file' });
  }
  if (options.requireKeysDir && parsed.data.tokens.format === 'jwt' && parsed.data.signing.keysDir === undefined) {
    problems.push({ path: 'signing.keysDir', message: 'required: a directory of PKCS#8 PEM signing keys (only dev mode generates one)' });
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: deepFreeze(parsed.data), warnings: configWarnings(parsed.data) };
}
