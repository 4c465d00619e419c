import { before, after } from 'node:test';
import supertest from 'supertest';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet, type SigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT, type SigningAlgorithm } from '../../src/server/protocol.js';
import { startStandInIssuer, type StandInIssuer, type StandInIssuerOptions } from '../fakes/stand-in-issuer.js';
import { createTestClock, type TestClock } from './clock.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import type { BrokerConfig, BrokerConfigInput } from '../../src/server/config/schema.js';
import type { Tracing } from '../../src/server/observability/tracing.js';

export const PUBLIC_URL = 'https://token-broker.test';
export const SUBJECT_AUDIENCE = 'tyk-token-broker';

export interface Harness {
  readonly issuer: StandInIssuer;
  readonly broker: Broker;
  readonly config: BrokerConfig;
  readonly clock: TestClock;
  readonly logs: LogCapture;
  readonly signingKeys: SigningKeySet;
  readonly http: ReturnType<typeof supertest>;
  /** POSTs an RFC 8693 form exchange of `subjectToken` with optional extra parameters. */
  exchange(subjectToken: string, extra?: Record<string, string>): supertest.Test;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly issuer?: StandInIssuerOptions;
  /** Replaces parts of the default configuration; `issuers` entries get the stand-in's URL filled in. */
  readonly config?: (issuerUrl: string) => Partial<BrokerConfigInput>;
  readonly signingAlgorithm?: SigningAlgorithm;
  /** The broker's signing keys, built with the harness's clock and logs; by default one fresh key. */
  readonly signingKeys?: (clock: TestClock, logs: LogCapture) => Promise<SigningKeySet>;
  /** OpenTelemetry tracing for the broker (test/support/span-capture.ts); by default none. */
  readonly tracing?: Tracing;
}

/** The default test configuration: one Kubernetes issuer (the stand-in) and two rules. */
export function defaultConfig(issuerUrl: string): BrokerConfigInput {
  return {
    server: { port: 8080, publicUrl: PUBLIC_URL },
    issuers: [{ name: 'test-cluster', issuer: issuerUrl, audiences: [SUBJECT_AUDIENCE], kind: 'kubernetes', clockSkewSeconds: 30 }],
    signing: { algorithm: 'ES256', keysDir: '/unused/in/tests' },
    tokens: { audience: 'tyk', allowedAudiences: ['tyk', 'tyk-internal'], defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
    rules: [
      {
        name: 'payments-ci',
        match: { issuers: ['test-cluster'], namespaces: ['payments', 'payments-*'], serviceAccounts: ['argo-*'] },
        policies: ['payments-read', 'payments-write'],
        ttlSeconds: 300,
      },
      { name: 'everyone-reads-status', match: { namespaces: ['*'] }, policies: ['status-read'] },
    ],
  };
}

/** POSTs an RFC 8693 form exchange of `subjectToken`, with optional extra parameters, to `/token` of `http`. */
export function postExchange(http: ReturnType<typeof supertest>, subjectToken: string, extra: Record<string, string> = {}): supertest.Test {
  return http
    .post('/token')
    .type('form')
    .send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken, ...extra });
}

/** Starts a stand-in issuer and a broker wired to it, with a shared controllable clock and captured logs. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = createTestClock();
  const issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, ...options.issuer, now: clock.now });
  const input = { ...defaultConfig(issuer.issuer), ...options.config?.(issuer.issuer) };
  const validation = validateConfig(input);
  if (!validation.ok) throw new Error(`test config invalid: ${JSON.stringify(validation.problems)}`);
  const config = validation.config;
  const logs = captureLogs();
  const signingKeys =
    (await options.signingKeys?.(clock, logs)) ?? staticSigningKeySet([await generateSigningKey(options.signingAlgorithm ?? config.signing.algorithm, clock.now())]);
  const broker = createBroker(config, { logger: logs.logger, signingKeys, now: clock.now, tracing: options.tracing });
  const http = supertest(broker.app);
  return {
    issuer,
    broker,
    config,
    clock,
    logs,
    signingKeys,
    http,
    exchange: (subjectToken, extra) => postExchange(http, subjectToken, extra),
    async close() {
      await broker.close();
      await issuer.close();
    },
  };
}

/**
 * The harness of the enclosing describe's tests: started in a `before` hook (then warmed up, with `warmUp`, so
 * the issuer keys are loaded before the first exchange) and closed in an `after` hook. What it returns stands for
 * that harness from the first test on; reading it while the describe is being declared throws.
 */
export function useHarness(options: HarnessOptions & { readonly warmUp?: boolean } = {}): Harness {
  let started: Harness | undefined;
  before(async () => {
    started = await startHarness(options);
    if (options.warmUp === true) await started.broker.warmUp();
  });
  after(() => started?.close());
  return new Proxy({} as Harness, {
    get(_, key) {
      if (started === undefined) throw new Error('useHarness: the harness starts in a before hook; read it in a test or a later hook');
      return Reflect.get(started, key) as unknown;
    },
  });
}
