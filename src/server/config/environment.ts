/**
 * Every environment variable the broker reads, in one table: the configuration loader's overrides, and the two
 * that only `serve` reads. `token-broker help` prints this table, and the environment types below come from it,
 * so a variable cannot be read without being listed here (nor listed without being read: test/config).
 */
export const ENVIRONMENT_VARIABLES = [
  { name: 'BROKER_CONFIG', readBy: 'serve', description: 'configuration file for serve when --config is not given' },
  { name: 'PORT', readBy: 'config loader', description: 'overrides server.port (in dev mode too)' },
  { name: 'PUBLIC_URL', readBy: 'config loader', description: 'overrides server.publicUrl (the `iss` of minted tokens, the base of the JWKS URL)' },
  { name: 'TLS_CERT_FILE', readBy: 'config loader', description: 'overrides server.tls.certFile; with TLS_KEY_FILE, turns HTTPS on' },
  { name: 'TLS_KEY_FILE', readBy: 'config loader', description: 'overrides server.tls.keyFile; with TLS_CERT_FILE, turns HTTPS on' },
  { name: 'REDIS_URL', readBy: 'config loader', description: 'overrides cache.redis.url: the Redis token cache shared by replicas' },
  {
    name: 'KUBECONFIG',
    readBy: 'config loader',
    description: 'kubernetes.kubeconfig when the file names none (the first path of the list, as kubectl reads it)',
  },
  {
    name: 'KUBERNETES_SERVICE_HOST',
    readBy: 'config loader',
    description: 'with KUBERNETES_SERVICE_PORT, kubernetes.apiServer of a cluster block with no kubeconfig (set in every pod)',
  },
  { name: 'KUBERNETES_SERVICE_PORT', readBy: 'config loader', description: 'see KUBERNETES_SERVICE_HOST' },
  { name: 'NODE_ENV', readBy: 'serve', description: '"production" refuses dev mode' },
  // OpenTelemetry (README, "Traces"; docs/runbook.md): these decide whether serve traces; the SDK reads the other OTEL_* variables itself.
  { name: 'OTEL_SDK_DISABLED', readBy: 'serve', description: '"true" turns tracing off, whatever else is set' },
  { name: 'OTEL_TRACES_EXPORTER', readBy: 'serve', description: '"otlp" turns tracing on (OTLP/HTTP); "none" turns it off' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', readBy: 'serve', description: 'OTLP/HTTP collector base URL (spans go to /v1/traces); set, turns tracing on' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', readBy: 'serve', description: 'OTLP/HTTP traces URL, used as is; set, turns tracing on' },
  { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', readBy: 'serve', description: 'only "http/json" is exported; another value is warned about at start-up (the spans still go as OTLP/HTTP JSON)' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', readBy: 'serve', description: 'as OTEL_EXPORTER_OTLP_PROTOCOL, for traces; wins over it' },
  { name: 'OTEL_SERVICE_NAME', readBy: 'serve', description: 'service.name of the exported spans (default token-broker)' },
] as const satisfies readonly { readonly name: string; readonly readBy: 'config loader' | 'serve'; readonly description: string }[];

type VariableReadBy<Reader extends string> = Extract<(typeof ENVIRONMENT_VARIABLES)[number], { readonly readBy: Reader }>['name'];

/** The variables that override the configuration file, read by the loader (every command that loads a configuration). */
export type ConfigEnvironment = { readonly [Name in VariableReadBy<'config loader'>]?: string | undefined };

/** What `serve` reads: the loader's overrides, the configuration path and NODE_ENV. */
export type ServeEnvironment = ConfigEnvironment & { readonly [Name in VariableReadBy<'serve'>]?: string | undefined };
