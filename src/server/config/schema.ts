import { z } from 'zod';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../protocol.js';
import { tykPoliciesSchema } from './tyk-policies-schema.js';
import { tykApisSchema } from './tyk-apis-schema.js';

/**
 * The broker's configuration: shape, defaults and documentation in one place. The published JSON Schema
 * (config/broker.schema.json) and the configuration reference are generated from this file.
 * Cross-field rules that a JSON Schema cannot say live in `validate-config.ts`.
 */

const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be lower-case letters, digits and dashes (a DNS label)');

const seconds = (min: number, max: number) => z.number().int().min(min).max(max);

const glob = z.string().min(1).max(256);

const tlsSchema = z
  .strictObject({
    certFile: z.string().min(1).describe('PEM certificate chain the listener serves (the leaf first), e.g. tls.crt of a kubernetes.io/tls Secret.'),
    keyFile: z.string().min(1).describe('PEM private key of that certificate, e.g. tls.key of the same Secret.'),
    clientCaFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM CA bundle for mutual TLS: POST /token then requires a client certificate it signed. Health, metrics, JWKS and discovery stay open to kubelet probes, Prometheus and Tyk.'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version accepted.'),
  })
  .describe('Serve HTTPS. The files are re-read when they change (cert-manager renewals, Secret updates) without a restart; open connections keep the certificate they started with.');

const serverSchema = z
  .strictObject({
    port: z.number().int().min(1).max(65535).default(8080).describe('TCP port to listen on. The PORT environment variable overrides it.'),
    host: z.string().min(1).default('0.0.0.0').describe('Address to bind.'),
    publicUrl: z
      .url({ protocol: /^https?$/ })
      .describe('The broker\'s external base URL. It is the `iss` of minted tokens; the JWKS is published under it at /.well-known/jwks.json.'),
    headersTimeoutSeconds: seconds(1, 120).default(10).describe('A client that has not sent its complete headers by then is disconnected.'),
    requestTimeoutSeconds: seconds(1, 300).default(30).describe('A request that has not been received completely by then is disconnected.'),
    shutdownTimeoutSeconds: seconds(1, 300).default(20).describe('On SIGTERM, how long in-flight requests may take before the process exits anyway.'),
    tls: tlsSchema.optional(),
  })
  .describe('The HTTP listener: plain HTTP, or HTTPS with `tls`.');

const kubernetesSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    kubeconfig: z.string().min(1).optional().describe('Kubeconfig file (or KUBECONFIG). Omitted: in-cluster configuration.'),
    apiServer: z
      .url({ protocol: /^https$/ })
      .optional()
      .describe(
        'In-cluster configuration only: the API server reached with the pod\'s service-account token. Default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, as client-go reads it. Ignored with a kubeconfig.',
      ),
    podBinding: z
      .enum(['enforce', 'off'])
      .default('enforce')
      .describe('enforce: the token\'s pod must exist with the same UID, not be terminating, and not be a completed Argo pod.'),
    verification: z
      .enum(['jwks', 'tokenreview'])
      .default('jwks')
      .describe('jwks: verify locally (default). tokenreview: also ask the API server (TokenReview with the issuer\'s audiences).'),
    cacheSeconds: z
      .strictObject({
        namespace: seconds(0, 3600).default(60),
        serviceAccount: seconds(0, 3600).default(60),
        pod: seconds(0, 300).default(10),
      })
      .default({ namespace: 60, serviceAccount: 60, pod: 10 })
      .describe('How long namespace, service-account and pod lookups are cached (pods by UID).'),
  })
  .describe('The Kubernetes API of a cluster: live pod binding and labels for rules.');

const issuerSchema = z
  .strictObject({
    name: name.describe('Short name used in rules, minted claims and metrics.'),
    issuer: z
      .url({ protocol: /^https?$/ })
      .describe('Exact `iss` of the subject tokens, trailing slash included (AKS issuers end with one).'),
    audiences: z.array(z.string().min(1)).min(1).describe('The subject token\'s `aud` must contain one of these.'),
    kind: z
      .enum(['kubernetes', 'oidc'])
      .default('kubernetes')
      .describe('kubernetes: a projected service-account token, which must carry the `kubernetes.io` claim. oidc: any workload OIDC token.'),
    discoveryUrl: z.url({ protocol: /^https?$/ }).optional().describe('Default: {issuer}/.well-known/openid-configuration.'),
    jwksUri: z.url({ protocol: /^https?$/ }).optional().describe('Overrides the discovered jwks_uri (API servers often advertise an address the broker cannot reach).'),
    jwksOrigins: z
      .array(z.url({ protocol: /^https?$/ }))
      .min(1)
      .optional()
      .describe(
        'Origins (scheme://host[:port]) besides the issuer\'s own where a discovered jwks_uri may be, for issuers that publish keys on another host (accounts.google.com: https://www.googleapis.com). The broker\'s bearerTokenFile is sent only to configured origins.',
      ),
    jwksFile: z.string().min(1).optional().describe('A static JWKS file instead of discovery, for air-gapped clusters (`kubectl get --raw /openid/v1/jwks`).'),
    caFile: z.string().min(1).optional().describe('PEM CA bundle trusted for discovery and JWKS over TLS (in-cluster: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt).'),
    bearerTokenFile: z
      .string()
      .min(1)
      .optional()
      .describe('A token sent as Authorization: Bearer to discovery and JWKS, re-read on each fetch (in-cluster: the broker\'s own service-account token).'),
    clockSkewSeconds: seconds(0, 300).default(30).describe('Tolerance applied to `exp`, `nbf` and `iat`.'),
    allowInsecureHttp: z
      .boolean()
      .default(false)
      .describe('Allow plain http:// discovery and JWKS on a non-loopback host. Loopback addresses are always allowed.'),
    kubernetes: kubernetesSchema.optional().describe('This issuer\'s cluster API, for multi-cluster setups; overrides the top-level kubernetes block.'),
  })
  .describe('A trusted issuer of subject tokens.');

/** signing.algorithm when the configuration names none; also `keys generate`'s default. */
export const DEFAULT_SIGNING_ALGORITHM = 'ES256' satisfies SigningAlgorithm;

const signingSchema = z
  .strictObject({
    algorithm: z.enum(SIGNING_ALGORITHMS).default(DEFAULT_SIGNING_ALGORITHM).describe('Algorithm of minted tokens. Tyk has no EdDSA.'),
    keysDir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Directory of PKCS#8 PEM private keys (a mounted Kubernetes Secret), each with an optional `<name>.json` {"notBefore": RFC 3339} giving its creation time (else the file\'s mtime). Re-read on change. Required outside dev mode.',
      ),
    prePublishSeconds: seconds(0, 86400)
      .default(300)
      .describe('How long a new key is published in the JWKS before it signs. Must exceed tykJwksCacheSeconds plus the time a Secret update takes to reach every replica.'),
    tykJwksCacheSeconds: seconds(0, 86400)
      .default(240)
      .describe('How long Tyk caches the broker\'s JWKS (Tyk `jwks.cache.timeout` / `cacheTimeout`; 240 by default). Only used to warn when prePublishSeconds is not longer.'),
    retireMarginSeconds: seconds(0, 86400)
      .default(60)
      .describe('A superseded key stays published for tokens.maxTtlSeconds plus this margin (clock skew), then leaves the JWKS.'),
  })
  .default({ algorithm: DEFAULT_SIGNING_ALGORITHM, prePublishSeconds: 300, tykJwksCacheSeconds: 240, retireMarginSeconds: 60 })
  .describe('How minted tokens are signed, and when keys start and stop signing.');

const tokensSchema = z
  .strictObject({
    audience: z.string().min(1).default('tyk').describe('Default `aud` of minted tokens.'),
    allowedAudiences: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Audiences a caller may request with the `audience` parameter. Default: only `audience`.'),
    defaultTtlSeconds: seconds(60, 86400).default(600).describe('Lifetime of minted tokens when no matching rule sets one.'),
    maxTtlSeconds: seconds(60, 86400).default(3600).describe('Upper bound on any minted token\'s lifetime.'),
    subject: z
      .string()
      .min(1)
      .default('system:serviceaccount:{namespace}:{serviceAccount}')
      .describe('Template for `sub`, the identity Tyk keys its session (rate limit, quota) on. Variables: {issuer} {namespace} {serviceAccount} {pod} {sub}.'),
    policyClaim: z.string().min(1).default('pol').describe('Claim holding the first granted policy (Tyk `policyFieldName`).'),
    scopeClaim: z.string().min(1).default('scope').describe('Claim holding all granted policies, space-separated (Tyk scope-to-policy mapping).'),
    contextClaim: z
      .string()
      .min(1)
      .default('workload')
      .describe('Claim holding the workload context: issuer name, namespace, service account, pod, workflow, node.'),
    format: z
      .enum(['jwt', 'tyk-key'])
      .default('jwt')
      .describe('jwt: a JWT Tyk validates through the broker\'s JWKS. tyk-key: a Tyk key created through the Gateway REST API (needs the `tyk` block), for APIs that use Tyk\'s own auth tokens.'),
  })
  .default({
    audience: 'tyk',
    defaultTtlSeconds: 600,
    maxTtlSeconds: 3600,
    subject: 'system:serviceaccount:{namespace}:{serviceAccount}',
    policyClaim: 'pol',
    scopeClaim: 'scope',
    contextClaim: 'workload',
    format: 'jwt',
  })
  .describe('What minted tokens look like.');

const labelKey = z
  .string()
  .min(1)
  .max(317)
  .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'must be a Kubernetes label key');
const labelValue = z.string().max(63).regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, 'must be a Kubernetes label value');

const labelSelectorSchema = z
  .strictObject({
    matchLabels: z.record(labelKey, labelValue).optional(),
    matchExpressions: z
      .array(
        z.strictObject({
          key: labelKey,
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(labelValue).optional(),
        }),
      )
      .optional(),
  })
  .describe('A Kubernetes label selector with the API\'s semantics (matchLabels, matchExpressions: In, NotIn, Exists, DoesNotExist).');

/** A policy ID, or a template over admin-controlled names and labels: "{namespace.labels.team}-read". */
const policyOrTemplate = z.string().min(1).max(256).regex(/^\S+$/, 'must not contain spaces');

const ruleSchema = z
  .strictObject({
    name: name.describe('Unique rule name, shown in logs, audit records and the explain output.'),
    match: z
      .strictObject({
        issuers: z.array(name).min(1).optional().describe('Issuer names. Omitted: any issuer.'),
        namespaces: z.array(glob).min(1).optional().describe('Namespace globs (`*` matches any run of characters). Omitted: any.'),
        serviceAccounts: z.array(glob).min(1).optional().describe('Service-account name globs. Omitted: any.'),
        claims: z
          .record(z.string().regex(/^(\/([^~/]|~[01])*)+$/, 'must be a JSON pointer such as /kubernetes.io/pod/name'), glob)
          .optional()
          .describe('JSON pointer into the verified claims -> glob the string value must match.'),
        namespaceSelector: labelSelectorSchema.optional().describe('Labels of the workload\'s namespace (admin-controlled; needs kubernetes).'),
        serviceAccountSelector: labelSelectorSchema.optional().describe('Labels of the workload\'s service account (admin-controlled; needs kubernetes).'),
        podSelector: labelSelectorSchema
          .optional()
          .describe('Labels of the workload\'s pod. Submitter-controlled (Argo copies podMetadata and template labels): a rule using it may only offer `requestable` policies.'),
        podAnnotationSelector: labelSelectorSchema
          .optional()
          .describe('Annotations of the workload\'s pod, with selector semantics. Submitter-controlled, like podSelector.'),
        workflows: z
          .array(glob)
          .min(1)
          .optional()
          .describe('Argo workflow name globs (pod label workflows.argoproj.io/workflow). Submitter-controlled, like podSelector.'),
      })
      .default({})
      .describe('Every condition given must hold. An empty match matches every verified token.'),
    policies: z
      .array(policyOrTemplate)
      .min(1)
      .optional()
      .describe('Tyk policy IDs this rule grants. May be templates over admin-controlled values: {issuer} {namespace} {serviceAccount} {namespace.labels.KEY} {serviceAccount.labels.KEY}.'),
    requestable: z
      .array(policyOrTemplate)
      .min(1)
      .optional()
      .describe('Policies granted only when asked for: by the `scope` parameter, or, for a rule with pod conditions, by the pod matching them.'),
    allowedPolicies: z
      .array(glob)
      .min(1)
      .optional()
      .describe('Globs every policy this rule produces must match; required when a policy is a template.'),
    ttlSeconds: seconds(60, 86400).optional().describe('Lifetime cap for tokens this rule contributes to.'),
  })
  .describe('Maps verified workload identities to Tyk policies. Every matching rule contributes its policies.');

const hostPort = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
});

const redisSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^rediss?$/ })
      .optional()
      .describe('redis:// or rediss:// (TLS) URL of a single Redis. REDIS_URL overrides it. Default when no sentinels or cluster are given: redis://127.0.0.1:6379/0.'),
    sentinels: z.array(hostPort).min(1).optional().describe('Redis Sentinel addresses; the broker follows the master they name.'),
    sentinelName: z.string().min(1).default('mymaster').describe('Name of the master the sentinels watch.'),
    cluster: z.array(hostPort).min(1).optional().describe('Seed nodes of a Redis Cluster.'),
    keyPrefix: z.string().max(64).default('tb:').describe('Prefix of every key the broker writes.'),
    commandTimeoutMs: z
      .number()
      .int()
      .min(5)
      .max(10000)
      .default(100)
      .describe('No request waits longer than this for Redis; after a timeout Redis is bypassed until it answers again.'),
  })
  .describe('A Redis shared by all replicas: cache of minted tokens, mint locks, rate limits, audit stream.');

const cacheSchema = z
  .strictObject({
    redis: redisSchema.optional(),
    refreshBeforeSeconds: seconds(0, 3600).default(60).describe('Never hand out a cached token with less life left than this.'),
    memory: z
      .strictObject({
        maxEntries: z.number().int().min(1).max(10_000_000).default(10000).describe('Bound of the in-process LRU (used when no Redis is configured).'),
      })
      .default({ maxEntries: 10000 }),
  })
  .default({ refreshBeforeSeconds: 60, memory: { maxEntries: 10000 } })
  .describe('The cache of minted tokens: Redis when configured, otherwise an in-process LRU for a single instance.');

const limitsSchema = z
  .strictObject({
    minting: z
      .strictObject({
        enabled: z.boolean().default(true),
        ratePerMinute: z.number().min(1).max(600000).default(60).describe('Sustained mints per minute per workload (issuer, subject, pod).'),
        burst: z.number().int().min(1).max(100000).default(20).describe('Mints a workload may make at once before the rate applies.'),
      })
      .default({ enabled: true, ratePerMinute: 60, burst: 20 })
      .describe('Token bucket per workload on minting; answers served from the cache do not count. Exceeding it: 429 rate_limited.'),
  })
  .default({ minting: { enabled: true, ratePerMinute: 60, burst: 20 } });

const auditSchema = z
  .strictObject({
    redisStream: z
      .strictObject({
        key: z.string().min(1).default('tb:audit').describe('Stream key.'),
        maxLen: z.number().int().min(100).max(100_000_000).default(100000).describe('Approximate bound (XADD MAXLEN ~).'),
      })
      .optional()
      .describe('Also append one record per issued token to a Redis stream (requires cache.redis).'),
  })
  .default({})
  .describe('Audit records: one per issued token, always logged with audit: true; optionally streamed to Redis.');

const tykSchema = z
  .strictObject({
    gatewayUrl: z.url({ protocol: /^https?$/ }).describe('Base URL of the Tyk Gateway REST API, e.g. http://tyk-gateway.tyk.svc:8080.'),
    secretFile: z.string().min(1).describe('File holding the Gateway secret (x-tyk-authorization), re-read on every call; never logged.'),
    orgId: z.string().min(1).default('default').describe('org_id of created keys; must equal the APIs\' and policies\' org_id.'),
    timeoutMs: z.number().int().min(100).max(30000).default(2000).describe('Upper bound on one Gateway call.'),
  })
  .describe('The Tyk Gateway REST API, for tokens.format: tyk-key.');

const loggingSchema = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .default({ level: 'info' });

// metrics ----------------------------------------------------------------------------------------------------
const metricsSchema = z
  .strictObject({
    namespaceLabel: z
      .boolean()
      .default(false)
      .describe(
        'Add a `namespace` label (the workload\'s namespace; empty when the exchange ended before it was known) to token_broker_exchanges_total. Off by default to keep the series count bounded: on, every calling namespace multiplies the outcome and reason series.',
      ),
  })
  .default({ namespaceLabel: false })
  .describe('What the Prometheus metrics at /metrics break down by.');
// ------------------------------------------------------------------------------------------------------------

// denies and the admin endpoint ------------------------------------------------------------------------------
const denyFacetValue = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[\x21-\x7e]+$/, 'must be an exact name: printable characters without spaces (no globs)');

const staticDenySchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be letters, digits, dots, dashes or underscores (at most 64)')
      .describe('Names the deny in logs, audit records and metrics.'),
    issuer: denyFacetValue.optional().describe('A configured issuer name (issuers[].name).'),
    namespace: denyFacetValue.optional(),
    serviceAccount: denyFacetValue.optional(),
    workflow: denyFacetValue.optional().describe('An Argo workflow run (its pod label workflows.argoproj.io/workflow; needs the Kubernetes API).'),
    jti: denyFacetValue.optional().describe('One issued access token: the cache never serves it again.'),
    until: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, 'must be an RFC 3339 time, e.g. 2026-12-08T06:00:00Z')
      .refine((text) => !Number.isNaN(Date.parse(text)), 'must be a real time')
      .optional().describe('RFC 3339 time after which the deny refuses nothing. Omitted: in force while configured.'),
    reason: z.string().min(1).max(200).describe('Sent to the refused workload (error_description) and logged; control characters are replaced by spaces.'),
  })
  .refine((deny) => deny.issuer !== undefined || deny.namespace !== undefined || deny.serviceAccount !== undefined || deny.workflow !== undefined || deny.jti !== undefined, {
    message: 'name at least one of issuer, namespace, serviceAccount, workflow, jti',
  });

const deniesSchema = z
  .strictObject({
    static: z
      .array(staticDenySchema)
      .max(1000)
      .default([])
      .describe('Denies in force on every replica, with or without Redis. Every facet given must match, exactly.'),
    pollSeconds: seconds(1, 300)
      .default(10)
      .describe('Safety net under pub/sub: how often each replica re-reads the shared denies in Redis anyway.'),
  })
  .default({ static: [], pollSeconds: 10 })
  .describe(
    'The kill switch: identities refused with 403 access_denied (reason denied). Shared denies live in Redis (token-broker deny add, the admin endpoint) and reach every replica within a second; static ones here.',
  );

const adminSchema = z
  .strictObject({
    port: z.number().int().min(1).max(65535).describe('Port of the admin listener; must differ from server.port.'),
    host: z.string().min(1).default('127.0.0.1').describe('Address to bind; loopback by default (reach it with kubectl port-forward).'),
    bearerTokenFile: z
      .string()
      .min(1)
      .optional()
      .describe('File holding the admin bearer secret (at least 32 characters), re-read on each request; compared in constant time.'),
    tls: z
      .strictObject({
        certFile: z.string().min(1).describe('PEM certificate chain of the admin listener.'),
        keyFile: z.string().min(1).describe('PEM private key of that certificate.'),
        clientCaFile: z.string().min(1).describe('PEM CA bundle: every admin request needs a client certificate it signed (mutual TLS).'),
        minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
      })
      .optional()
      .describe('Serve the admin listener over HTTPS with mutual TLS; read at start-up. With bearerTokenFile too, both are required.'),
  })
  .refine((admin) => admin.bearerTokenFile !== undefined || admin.tls !== undefined, { message: 'set bearerTokenFile, tls (mutual TLS), or both' })
  .describe('The admin listener (off when omitted): GET/POST /admin/v1/denies, DELETE /admin/v1/denies/{id}. Never served on the public listener.');
// ------------------------------------------------------------------------------------------------------------

export const brokerConfigSchema = z
  .strictObject({
    server: serverSchema,
    issuers: z.array(issuerSchema).min(1).describe('Trusted issuers of subject tokens; several at once for multi-cluster and issuer migrations.'),
    signing: signingSchema,
    tokens: tokensSchema,
    rules: z.array(ruleSchema).min(1).describe('Evaluated in order; all matching rules contribute.'),
    cache: cacheSchema,
    kubernetes: kubernetesSchema.optional().describe('The cluster API for every kubernetes issuer without a kubernetes block of its own.'),
    explain: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Serve POST /v1/explain: a workload may ask, with its own subject token, why it gets what it gets.'),
      })
      .default({ enabled: false }),
    tyk: tykSchema.optional(),
    policies: tykPoliciesSchema,
    apis: tykApisSchema,
    limits: limitsSchema,
    audit: auditSchema,
    logging: loggingSchema,
    metrics: metricsSchema,
    denies: deniesSchema,
    admin: adminSchema.optional(),
  })
  .describe('workload-token-broker configuration');

export type BrokerConfigInput = z.input<typeof brokerConfigSchema>;
export type BrokerConfig = z.output<typeof brokerConfigSchema>;
export type IssuerConfig = BrokerConfig['issuers'][number];
export type RuleConfig = BrokerConfig['rules'][number];
export type TokensConfig = BrokerConfig['tokens'];
export type RedisConfig = NonNullable<BrokerConfig['cache']['redis']>;
export type StaticDenyConfig = BrokerConfig['denies']['static'][number];
