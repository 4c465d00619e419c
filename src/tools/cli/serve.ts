import { pino, type Logger } from 'pino';
import { createBroker, type Broker } from '../../server/broker.js';
import { loadConfigFile, ConfigError } from '../../server/config/load-config.js';
import { devConfig, DEV_AUDIENCE } from '../../server/config/dev-config.js';
import { createDevClusterIssuer } from '../dev/dev-cluster-issuer.js';
import { ephemeralSigningKeySet } from '../../server/mint/signing-key-set.js';
import { openSigningKeyDirectory, type SigningKeyDirectory } from '../../server/mint/signing-key-directory.js';
import { keyLifecycleSettings } from '../../server/mint/key-lifecycle.js';
import { configWarnings } from '../../server/config/validate-config.js';
import { listen, type HttpServerOptions, type RunningServer } from '../../server/http/serve-http.js';
import { readTlsCredentials, type TlsCredentials } from '../../server/tls/tls-credentials.js';
import { reloadTlsOnChange, type TlsReloader } from '../../server/tls/tls-reloader.js';
import { recordConfigReload, recordServingCertificate } from '../../server/observability/metrics.js';
import { watchConfigFile, type ConfigFileReloader } from '../../server/config/config-file-reloader.js';
import { REDACT_PATHS, REDACTION_CENSOR } from '../../server/observability/log-redaction.js';
import type { BrokerConfig } from '../../server/config/schema.js';
import type { ServeEnvironment } from '../../server/config/environment.js';
import { startTracing, type TracingSetup } from '../../server/observability/tracing-sdk.js';
import { createTurnBatchedDestination } from '../../server/observability/log-destination.js';

export type { ServeEnvironment } from '../../server/config/environment.js';

function createLogger(level: BrokerConfig['logging']['level']): Logger {
  return pino(
    {
      level,
      base: { service: 'token-broker' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: nothing logs these fields, but if one ever did, it would not leak a credential.
      redact: { paths: [...REDACT_PATHS], censor: REDACTION_CENSOR },
    },
    // The lines of one event-loop turn in one write to stdout, on the event loop (see the destination).
    createTurnBatchedDestination(process.stdout.fd),
  );
}

function devBanner(port: number): string {
  const base = `http://127.0.0.1:${port}`;
  return [
    '',
    `  workload-token-broker is running in DEV MODE on ${base}`,
    '  (embedded stand-in cluster issuer, ephemeral signing key, in-memory cache; loopback only)',
    '',
    '  1. Mint a demo workload token (shaped like a Kubernetes projected service-account token):',
    `     TOKEN=$(curl -s ${base}/dev/workload-token -H 'content-type: application/json' \\`,
    `       -d '{"namespace":"payments","serviceAccount":"argo-runner"}' | sed -E 's/.*"token":"([^"]+)".*/\\1/')`,
    '',
    '  2. Exchange it for a Tyk access token (RFC 8693):',
    `     curl -s ${base}/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\`,
    '       -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d "subject_token=$TOKEN"',
    '',
    '     or, curl-friendly, the bare token back:',
    `     curl -s -X POST ${base}/token -H "Authorization: Bearer $TOKEN" -H 'Accept: text/plain'`,
    '',
    `  JWKS for Tyk: ${base}/.well-known/jwks.json    metrics: ${base}/metrics    readiness: ${base}/readyz`,
    '',
  ].join('\n');
}

interface Started {
  readonly broker: Broker;
  readonly server: RunningServer;
  readonly config: BrokerConfig;
  readonly logger: Logger;
  /** The watched keys directory, closed on shutdown (absent in dev mode). */
  readonly keyDirectory?: SigningKeyDirectory;
  /** Re-reads server.tls's files, closed on shutdown (absent without TLS). */
  readonly tlsReloader?: TlsReloader;
  /** The admin listener (config `admin`), on its own port; absent when off. */
  readonly adminServer?: RunningServer;
  /** The OpenTelemetry SDK, flushed on shutdown (absent unless OTEL_* asks for traces). */
  readonly tracing?: TracingSetup;
}

type TlsSettings = NonNullable<BrokerConfig['server']['tls']>;

/** Reads server.tls's files once before listening: a certificate that cannot be served stops start-up. */
async function initialTlsCredentials(path: string, tls: TlsSettings | NonNullable<NonNullable<BrokerConfig['admin']>['tls']>, field = 'server.tls'): Promise<TlsCredentials> {
  try {
    return await readTlsCredentials(tls);
  } catch (error) {
    throw new ConfigError(path, [{ path: field, message: error instanceof Error ? error.message : String(error) }]);
  }
}

/** Listens over HTTPS and keeps the certificate current; warns when the certificate in force is already expired. */
async function listenTls(broker: Broker, config: BrokerConfig, tls: TlsSettings, credentials: TlsCredentials, logger: Logger): Promise<{ server: RunningServer; tlsReloader: TlsReloader }> {
  const options: HttpServerOptions = { ...config.server, https: { secureContext: credentials.secureContext, requestClientCertificate: tls.clientCaFile !== undefined } };
  const server = await listen(broker.app, options);
  recordServingCertificate(broker.metrics, true, credentials);
  const tlsLogger = logger.child({ component: 'tls' });
  if (credentials.notAfter <= Date.now()) tlsLogger.error({ notAfter: new Date(credentials.notAfter).toISOString() }, 'the serving TLS certificate has expired: clients will refuse it');
  const tlsReloader = reloadTlsOnChange({
    files: tls,
    initial: credentials,
    apply: (next) => server.setSecureContext(next.secureContext),
    onRead: (ok, inForce) => recordServingCertificate(broker.metrics, ok, inForce),
    logger: tlsLogger,
  });
  return { server, tlsReloader };
}

async function startDev(env: ServeEnvironment): Promise<Started> {
  const port = env.PORT !== undefined && env.PORT !== '' ? Number(env.PORT) : 8080;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('PORT', [{ path: 'PORT (environment)', message: 'must be an integer port from 1 to 65535' }]);
  const config = devConfig(port);
  const logger = createLogger(config.logging.level);
  const tracing = await startTracing(env, logger);
  const devIssuer = await createDevClusterIssuer(config.server.publicUrl, DEV_AUDIENCE, Date.now);
  const signingKeys = await ephemeralSigningKeySet(config.signing.algorithm, Date.now());
  const broker = createBroker(config, { logger, signingKeys, extraRoutes: devIssuer.routes, tracing: tracing?.tracing });
  const server = await listen(broker.app, config.server);
  logger.warn({ port: server.port }, 'dev mode: embedded stand-in issuer and ephemeral key; never use in production');
  await broker.warmUp();
  console.log(devBanner(server.port));
  return { broker, server, config, logger, ...(tracing !== undefined && { tracing }) };
}

type AdminSettings = NonNullable<BrokerConfig['admin']>;

/** How the admin listener authenticates, for its start-up log line (never the secret itself). */
function adminAuthentication(admin: AdminSettings): string[] {
  return [...(admin.bearerTokenFile !== undefined ? ['bearer'] : []), ...(admin.tls !== undefined ? ['mutual-tls'] : [])];
}

/** The address a listener is bound to, as a URL an operator can paste (the real host, not the configured name). */
function boundAddress(running: RunningServer, scheme: 'http' | 'https'): string {
  const address = running.server.address();
  const host = address !== null && typeof address === 'object' ? address.address : 'unknown';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${running.port}`;
}

/**
 * Opens the public listener, then the admin one (config `admin`) on its own port, never the public one (validation
 * refuses a shared port). If the admin port cannot be bound, the public listener is closed again and start-up fails
 * naming admin.port.
 */
async function listenAll(
  path: string,
  broker: Broker,
  config: BrokerConfig,
  logger: Logger,
  tls: { settings: TlsSettings; credentials: TlsCredentials } | undefined,
  adminTls: TlsCredentials | undefined,
): Promise<Pick<Started, 'server' | 'tlsReloader' | 'adminServer'>> {
  const { server, tlsReloader } = tls === undefined ? { server: await listen(broker.app, config.server), tlsReloader: undefined } : await listenTls(broker, config, tls.settings, tls.credentials, logger);
  logger.info(
    {
      port: server.port,
      scheme: tls === undefined ? 'http' : 'https',
      ...(tls !== undefined && {
        certificate: { subject: tls.credentials.subject, notAfter: new Date(tls.credentials.notAfter).toISOString() },
        mutualTls: tls.settings.clientCaFile !== undefined,
      }),
      issuers: config.issuers.map((i) => i.name),
      rules: config.rules.length,
    },
    'token broker listening',
  );
  const admin = config.admin;
  if (broker.adminApp === undefined || admin === undefined) return { server, ...(tlsReloader !== undefined && { tlsReloader }) };
  let adminServer: RunningServer;
  try {
    adminServer = await listen(broker.adminApp, {
      port: admin.port,
      host: admin.host,
      headersTimeoutSeconds: config.server.headersTimeoutSeconds,
      requestTimeoutSeconds: config.server.requestTimeoutSeconds,
      // Mutual TLS: the certificate is read once at start-up (the public listener's is the one re-read).
      ...(adminTls !== undefined && { https: { secureContext: adminTls.secureContext, requestClientCertificate: true } }),
    });
  } catch (error) {
    await server.shutdown(0);
    await tlsReloader?.close();
    throw new ConfigError(path, [{ path: 'admin.port', message: `cannot listen on ${admin.host}:${admin.port}: ${error instanceof Error ? error.message : String(error)}` }]);
  }
  const scheme = adminTls === undefined ? 'http' : 'https';
  logger.info(
    { port: adminServer.port, host: admin.host, address: boundAddress(adminServer, scheme), scheme, authentication: adminAuthentication(admin) },
    'admin endpoint listening',
  );
  return { server, adminServer, ...(tlsReloader !== undefined && { tlsReloader }) };
}

async function startConfigured(path: string, env: ServeEnvironment): Promise<Started> {
  const config = await loadConfigFile(path, env);
  const logger = createLogger(config.logging.level);
  const keysDir = config.signing.keysDir;
  if (keysDir === undefined) throw new ConfigError(path, [{ path: 'signing.keysDir', message: 'required' }]);
  for (const warning of configWarnings(config)) logger.warn({ warning }, 'configuration warning');
  let signingKeys: SigningKeyDirectory;
  try {
    // Watched and re-read without a restart; each key's state follows its timestamps and the clock.
    signingKeys = await openSigningKeyDirectory({
      dir: keysDir,
      algorithm: config.signing.algorithm,
      lifecycle: keyLifecycleSettings(config.signing, config.tokens),
      now: Date.now,
      logger: logger.child({ component: 'signing-keys' }),
    });
  } catch (error) {
    throw new ConfigError(path, [{ path: 'signing.keysDir', message: error instanceof Error ? error.message : String(error) }]);
  }
  // Read before the broker is built: a certificate that cannot be served stops start-up with a precise error.
  const tls = config.server.tls === undefined ? undefined : { settings: config.server.tls, credentials: await initialTlsCredentials(path, config.server.tls).catch(async (error: unknown) => {
    await signingKeys.close();
    throw error;
  }) };
  // The admin certificate too, before anything listens: otherwise a bad admin.tls would leave the public listener open.
  const adminTls = config.admin?.tls === undefined ? undefined : await initialTlsCredentials(path, config.admin.tls, 'admin.tls').catch(async (error: unknown) => {
    await signingKeys.close();
    throw error;
  });
  // Before the broker is built: its parts are wrapped in spans only when tracing is on.
  const tracing = await startTracing(env, logger);
  const broker = createBroker(config, { logger, signingKeys, tracing: tracing?.tracing });
  let listening: Pick<Started, 'server' | 'tlsReloader' | 'adminServer'>;
  try {
    listening = await listenAll(path, broker, config, logger, tls, adminTls);
  } catch (error) {
    // A port that cannot be bound ends start-up: close what is open, or the process would live on, serving half.
    await broker.close();
    await signingKeys.close();
    await tracing?.shutdown().catch(() => undefined);
    throw error;
  }
  const { server, tlsReloader, adminServer } = listening;
  void broker.warmUp();
  return { broker, server, config, logger, keyDirectory: signingKeys, ...(tlsReloader !== undefined && { tlsReloader }), ...(adminServer !== undefined && { adminServer }), ...(tracing !== undefined && { tracing }) };
}

/**
 * Reloads the configuration file into the running broker on change (and on `reload()`, which SIGHUP calls): rules,
 * policies, apis, issuers... change without a restart; src/server/config/config-reload.ts says which.
 */
function reloadConfigOnChange(path: string, env: ServeEnvironment, broker: Broker, logger: Logger): ConfigFileReloader {
  return watchConfigFile({
    path,
    env,
    inForce: () => broker.config(),
    apply(next) {
      const outcome = broker.reconfigure(next);
      if (outcome.applied) for (const warning of configWarnings(next)) logger.warn({ warning }, 'configuration warning');
      return outcome;
    },
    onAttempt: (attempt) => recordConfigReload(broker.metrics, attempt.result),
    logger: logger.child({ component: 'config' }),
  });
}

export const SERVE_USAGE = `Usage: token-broker serve [--config FILE]

  Runs the broker until SIGTERM or SIGINT, then finishes in-flight requests and exits 0. SIGHUP, or a change of
  the configuration file, reloads it: rules, policies, apis, issuers, tokens and kubernetes change live; a change
  to another block is refused and logged, and the configuration in force stays (docs/runbook.md). The configuration is
  --config FILE, else BROKER_CONFIG; PORT, PUBLIC_URL, TLS_CERT_FILE/TLS_KEY_FILE, REDIS_URL and KUBECONFIG
  override it (token-broker help). With server.tls it serves HTTPS and reloads the certificate when it changes.
  Without either it runs in dev mode on 127.0.0.1: an embedded stand-in cluster issuer and an ephemeral signing
  key (refused with NODE_ENV=production).

  --config FILE, -c FILE   The broker configuration (YAML).

Exit status: 0 after a clean shutdown; 2 usage error, or the broker could not start.`;

/** `token-broker serve [--config FILE]`: runs until SIGTERM or SIGINT, then drains in-flight requests. */
export async function serve(configPath: string | undefined, env: ServeEnvironment): Promise<number> {
  const path = configPath ?? (env.BROKER_CONFIG !== '' ? env.BROKER_CONFIG : undefined);
  if (path === undefined && env.NODE_ENV === 'production') {
    console.error('token-broker: refusing dev mode with NODE_ENV=production; pass --config FILE or set BROKER_CONFIG.');
    return 2;
  }
  let started: Started;
  try {
    started = path === undefined ? await startDev(env) : await startConfigured(path, env);
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : `token-broker: cannot start: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const { broker, server, config, logger, keyDirectory, tlsReloader, adminServer, tracing } = started;
  return new Promise((resolve) => {
    const configReloader = path === undefined ? undefined : reloadConfigOnChange(path, env, broker, logger);
    // SIGHUP reloads the configuration file (Node's default for it would end the process).
    const onHangUp = () => {
      if (configReloader === undefined) logger.warn({ signal: 'SIGHUP' }, 'dev mode has no configuration file to reload');
      else void configReloader.reload('signal');
    };
    process.on('SIGHUP', onHangUp);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.off('SIGHUP', onHangUp);
      const reloadsStopped = configReloader?.close(); // awaited after draining, which starts at once
      logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
      const [result] = await Promise.all([server.shutdown(config.server.shutdownTimeoutSeconds), adminServer?.shutdown(config.server.shutdownTimeoutSeconds)]);
      await broker.close();
      await reloadsStopped;
      await keyDirectory?.close();
      await tlsReloader?.close();
      // The last exchanges' spans are still in the batch: export them before exiting (bounded by OTEL_BSP_EXPORT_TIMEOUT).
      await tracing?.shutdown().catch(() => undefined);
      logger.info({ result }, 'stopped');
      resolve(0);
    };
    process.once('SIGTERM', (s) => void stop(s));
    process.once('SIGINT', (s) => void stop(s));
  });
}
