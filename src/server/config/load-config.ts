import { readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { parseDocument, visit } from 'yaml';
import { validateConfig, type ConfigProblem } from './validate-config.js';
import type { BrokerConfig } from './schema.js';
import type { ConfigEnvironment } from './environment.js';

/** Thrown when a configuration cannot be used; carries every problem found, each with its field path. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(source: string, problems: readonly ConfigProblem[]) {
    super(`${source}: invalid configuration\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

// The environment variables that override the file (listed in ./environment.ts). The loader is the only module
// that reads them.
export type { ConfigEnvironment } from './environment.js';

function applyEnvironment(document: unknown, env: ConfigEnvironment, problems: ConfigProblem[]): unknown {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return document;
  const root = { ...(document as Record<string, unknown>) };
  const serverOf = (): Record<string, unknown> => (root.server !== null && typeof root.server === 'object' ? (root.server as Record<string, unknown>) : {});
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push({ path: 'PORT (environment)', message: `must be an integer port from 1 to 65535, got "${env.PORT}"` });
    } else {
      root.server = { ...serverOf(), port };
    }
  }
  if (env.PUBLIC_URL !== undefined && env.PUBLIC_URL !== '') root.server = { ...serverOf(), publicUrl: env.PUBLIC_URL };
  // Both or neither: half a key pair would silently keep the file's other half, or serve a certificate without its key.
  const certFile = env.TLS_CERT_FILE !== '' ? env.TLS_CERT_FILE : undefined;
  const keyFile = env.TLS_KEY_FILE !== '' ? env.TLS_KEY_FILE : undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const [missing, set] = certFile === undefined ? ['TLS_CERT_FILE', 'TLS_KEY_FILE'] : ['TLS_KEY_FILE', 'TLS_CERT_FILE'];
    problems.push({ path: `${missing} (environment)`, message: `required when ${set} is set (both or neither)` });
  } else if (certFile !== undefined && keyFile !== undefined) {
    const server = serverOf();
    const tls = server.tls !== null && typeof server.tls === 'object' ? (server.tls as Record<string, unknown>) : {};
    root.server = { ...server, tls: { ...tls, certFile, keyFile } };
  }
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') {
    const cache = root.cache !== null && typeof root.cache === 'object' ? (root.cache as Record<string, unknown>) : {};
    const redis = cache.redis !== null && typeof cache.redis === 'object' ? (cache.redis as Record<string, unknown>) : {};
    root.cache = { ...cache, redis: { ...redis, url: env.REDIS_URL } };
  }
  // KUBECONFIG fills kubernetes.kubeconfig when the file names none (like kubectl); the file wins.
  const kubeconfig = env.KUBECONFIG?.split(':')[0];
  if (kubeconfig !== undefined && kubeconfig !== '' && root.kubernetes !== null && typeof root.kubernetes === 'object') {
    const kubernetes = root.kubernetes as Record<string, unknown>;
    if (kubernetes.kubeconfig === undefined) root.kubernetes = { ...kubernetes, kubeconfig };
  }
  // In a pod, a cluster block with no kubeconfig reaches the API server Kubernetes names in every container's
  // environment (client-go's rest.InClusterConfig); the file's own apiServer wins.
  const apiServer = inClusterApiServer(env);
  if (apiServer !== undefined) {
    const withApiServer = (block: unknown): unknown => {
      if (block === null || typeof block !== 'object' || Array.isArray(block)) return block;
      const kubernetes = block as Record<string, unknown>;
      return kubernetes.kubeconfig === undefined && kubernetes.apiServer === undefined ? { ...kubernetes, apiServer } : block;
    };
    if (root.kubernetes !== undefined) root.kubernetes = withApiServer(root.kubernetes);
    if (Array.isArray(root.issuers)) {
      root.issuers = root.issuers.map((issuer: unknown) =>
        issuer !== null && typeof issuer === 'object' && 'kubernetes' in issuer
          ? { ...issuer, kubernetes: withApiServer((issuer as Record<string, unknown>).kubernetes) }
          : issuer,
      );
    }
  }
  return root;
}

/** https://HOST:PORT from the variables kubelet sets in every container, an IPv6 host in brackets; undefined outside a pod. */
export function inClusterApiServer(env: ConfigEnvironment): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') return undefined;
  return `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Parses YAML text, rejecting duplicate keys and syntax errors with their line numbers. */
export function parseConfigText(text: string, source: string): unknown {
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      source,
      document.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] ?? e.code })),
    );
  }
  try {
    return document.toJS();
  } catch (error) {
    // Alias problems (an alias to an anchor never set, or an alias bomb) surface only when the document is
    // resolved, as a plain ReferenceError: still a problem of the file, reported like the others.
    const message = error instanceof Error ? error.message : String(error);
    const alias = /: (\S+)$/.exec(message)?.[1];
    let offset: number | undefined;
    visit(document, {
      Alias(_, node) {
        if (alias !== undefined && node.source !== alias) return undefined;
        offset = node.range?.[0];
        return visit.BREAK;
      },
    });
    const line = offset === undefined ? '?' : String(text.slice(0, offset).split('\n').length);
    throw new ConfigError(source, [{ path: `line ${line}`, message }]);
  }
}

/** Reads, parses and validates a configuration file; throws ConfigError naming every bad field. */
export async function loadConfigFile(path: string, env: ConfigEnvironment): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(path, [{ path: '(file)', message: `cannot read the file (${reason})` }]);
  }
  return loadConfigText(text, path, env);
}

/**
 * Parses and validates configuration text read from `source`, environment overrides applied: what start-up and
 * a configuration reload both go through. Throws ConfigError naming every bad field.
 */
export function loadConfigText(text: string, source: string, env: ConfigEnvironment): BrokerConfig {
  const problems: ConfigProblem[] = [];
  const document = applyEnvironment(parseConfigText(text, source), env, problems);
  const result = validateConfig(document);
  if (!result.ok) problems.push(...result.problems);
  if (problems.length > 0 || !result.ok) throw new ConfigError(source, problems);
  return result.config;
}
