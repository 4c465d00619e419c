import { validateConfig } from './validate-config.js';
import type { BrokerConfig } from './schema.js';

export const DEV_ISSUER_NAME = 'dev';
export const DEV_AUDIENCE = 'token-broker';
export const DEV_POLICY = 'demo-policy';

/**
 * The embedded dev configuration: the broker's own stand-in issuer on loopback, an ephemeral key, the
 * in-memory cache and one rule granting a demo policy to every workload of the dev issuer.
 * Bound to 127.0.0.1 only: its issuer hands out workload tokens to anyone who asks.
 */
export function devConfig(port: number): BrokerConfig {
  const base = `http://127.0.0.1:${port}`;
  const result = validateConfig(
    {
      server: { port, host: '127.0.0.1', publicUrl: base },
      issuers: [{ name: DEV_ISSUER_NAME, issuer: `${base}/dev`, audiences: [DEV_AUDIENCE], kind: 'kubernetes', clockSkewSeconds: 30 }],
      signing: { algorithm: 'ES256' },
      tokens: { audience: 'tyk', defaultTtlSeconds: 600, maxTtlSeconds: 3600 },
      rules: [{ name: 'dev-any-workload', match: { issuers: [DEV_ISSUER_NAME] }, policies: [DEV_POLICY] }],
      cache: { refreshBeforeSeconds: 60, memory: { maxEntries: 10000 } },
      logging: { level: 'info' },
    },
    { requireKeysDir: false },
  );
  if (!result.ok) throw new Error(`embedded dev configuration is invalid: ${JSON.stringify(result.problems)}`);
  return result.config;
}
