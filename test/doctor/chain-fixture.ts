import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { keyMetadataDocument, loadSigningKeysDir } from '../../src/server/mint/signing-key-set.js';
import { signingKeyFromPem } from '../../src/server/mint/signing-key.js';
import { grantablePolicies } from '../../src/tools/tyk-kit/grantable-policies.js';
import { buildTykOasApiDefinition } from '../../src/tools/tyk-kit/tyk-oas-api-definition.js';
import { buildTykPolicies } from '../../src/tools/tyk-kit/tyk-policies.js';
import type { BrokerConfig, BrokerConfigInput } from '../../src/server/config/schema.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { startStandInTyk, type StandInTyk } from '../fakes/stand-in-tyk.js';
import { captureLogs } from '../support/log-capture.js';
import { API_OPTIONS } from '../tyk/token-profile.js';

/**
 * The whole chain on loopback, as `token-broker doctor` sees it in production: a stand-in cluster issuer, a keys
 * directory with one PKCS#8 key published an hour ago, a real broker (createBroker) serving its JWKS at
 * {publicUrl}/.well-known/jwks.json, and a stand-in Tyk holding the policies and the Tyk OAS API definition that
 * `token-broker tyk` generates for that configuration.
 */
export interface Chain {
  readonly issuer: StandInIssuer;
  readonly tyk: StandInTyk;
  readonly broker: Broker;
  /** http://127.0.0.1:PORT of the broker: its server.publicUrl. */
  readonly publicUrl: string;
  readonly keysDir: string;
  /** The kid of the one key in keysDir. */
  readonly kid: string;
  /** A scratch directory removed by close(). */
  readonly workDir: string;
  /** A file holding the stand-in Tyk's secret, with a trailing newline as editors write it. */
  readonly secretFile: string;
  /** The validated configuration the broker runs with. */
  readonly config: BrokerConfig;
  /** The configuration input with `change` applied to a copy, validated. */
  configWith(change: (input: BrokerConfigInput) => BrokerConfigInput): BrokerConfig;
  /** Writes the configuration input (changed by `change`) as YAML into workDir and returns its path. */
  writeConfig(file: string, change?: (input: BrokerConfigInput) => BrokerConfigInput): Promise<string>;
  /** Puts Tyk back as the fixture set it up: the generated policies and the one OAS API. */
  resetTyk(): Promise<void>;
  close(): Promise<void>;
}

// The API the Tyk kit tests describe, so the doctor checks the same one.
export { API_OPTIONS };

function configInput(issuerUrl: string, publicUrl: string, keysDir: string): BrokerConfigInput {
  return {
    server: { publicUrl },
    issuers: [{ name: 'test-cluster', issuer: issuerUrl, audiences: ['tyk-token-broker'], clockSkewSeconds: 30 }],
    signing: { algorithm: 'ES256', keysDir, prePublishSeconds: 300, tykJwksCacheSeconds: 240 },
    tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
    rules: [
      { name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read', 'payments-write'] },
      { name: 'everyone-reads-status', match: {}, policies: ['status-read'] },
    ],
  };
}

function validated(input: BrokerConfigInput): BrokerConfig {
  const result = validateConfig(input);
  if (!result.ok) throw new Error(`test configuration refused: ${JSON.stringify(result.problems)}`);
  return result.config;
}

export async function startChain(): Promise<Chain> {
  const workDir = await mkdtemp(join(tmpdir(), 'doctor-chain-'));
  const keysDir = join(workDir, 'keys');
  await mkdir(keysDir);
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const { kid } = await signingKeyFromPem(pem, 'ES256', 'fixture', Date.now());
  await writeFile(join(keysDir, 'key-1.pem'), pem, { mode: 0o600 });
  // Created an hour ago: past the pre-publish window, so the key is plainly active.
  await writeFile(join(keysDir, 'key-1.json'), keyMetadataDocument(kid, Date.now() - 3600_000));

  const issuer = await startStandInIssuer({ alg: 'ES256', audience: 'tyk-token-broker' });
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const input = configInput(issuer.issuer, publicUrl, keysDir);
  const config = validated(input);
  // Captured, not silent: the whole-suite log-leak check (test/hygiene) reads what this broker logs.
  const broker = createBroker(config, { logger: captureLogs().logger, signingKeys: await loadSigningKeysDir(keysDir, 'ES256') });
  server.on('request', broker.app);

  const tyk = await startStandInTyk();
  const secretFile = join(workDir, 'tyk-secret');
  await writeFile(secretFile, `${tyk.secret}\n`, { mode: 0o600 });

  async function resetTyk(): Promise<void> {
    for (const id of ['payments-read', 'payments-write', 'status-read']) tyk.removePolicy(id);
    tyk.removeApi(API_OPTIONS.apiId);
    const api = { apiId: API_OPTIONS.apiId, apiName: API_OPTIONS.name, orgId: API_OPTIONS.orgId };
    for (const policy of buildTykPolicies(grantablePolicies(config.rules).grantable, api)) tyk.addPolicy(policy);
    await tyk.addApi(buildTykOasApiDefinition(config, API_OPTIONS));
  }
  await resetTyk();

  return {
    issuer,
    tyk,
    broker,
    publicUrl,
    keysDir,
    kid,
    workDir,
    secretFile,
    config,
    configWith: (change) => validated(change(structuredClone(input))),
    async writeConfig(file, change = (same) => same) {
      const path = join(workDir, file);
      await writeFile(path, stringify(change(structuredClone(input))));
      return path;
    },
    resetTyk,
    async close() {
      await broker.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await issuer.close();
      await tyk.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** A loopback address nothing listens on: a port taken and released. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
