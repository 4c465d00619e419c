import { validateConfig } from '../../src/server/config/validate-config.js';
import type { TokenProfile } from '../../src/tools/tyk-kit/tyk-jwt-validation.js';
import type { TykApiOptions } from '../../src/tools/tyk-kit/tyk-api-options.js';

/**
 * A valid broker configuration, through the real validator so defaults are the real ones. Given `rules`
 * replace the validated ones afterwards: the generators read only their policy lists, and what makes a rule
 * valid (templates need allowedPolicies and a Kubernetes-enabled issuer, ...) is the config tests' business.
 */
export function tokenProfile(
  overrides: { signing?: object; tokens?: object; rules?: readonly { name: string; policies?: string[]; requestable?: string[] }[]; publicUrl?: string } = {},
): TokenProfile {
  const result = validateConfig(
    {
      server: { publicUrl: overrides.publicUrl ?? 'https://token-broker.example' },
      issuers: [{ name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'] }],
      signing: { keysDir: '/keys', ...overrides.signing },
      tokens: { ...overrides.tokens },
      rules: [
        { name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read', 'payments-write'] },
        { name: 'ledger', match: { namespaces: ['payments'] }, policies: ['ledger-write', 'payments-read'] },
      ],
    },
    { requireKeysDir: true },
  );
  if (!result.ok) throw new Error(`test configuration refused: ${JSON.stringify(result.problems)}`);
  if (overrides.rules === undefined) return result.config;
  return { ...result.config, rules: overrides.rules.map((rule) => ({ match: {}, ...rule })) as TokenProfile['rules'] };
}

export const API_OPTIONS: TykApiOptions = {
  apiId: 'orders',
  name: 'Orders',
  orgId: 'default',
  listenPath: '/orders/',
  upstreamUrl: 'http://orders.payments.svc:8080',
  jwksCacheSeconds: 240,
};
