import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/** The gateway the resource tests name: one host, APIs at /payments/, /payments-admin/ and /status/. */
export const GATEWAY = 'https://gateway.example.com';

/**
 * The `policies` and `apis` blocks over the harness's default rules: payments-read and payments-write open the
 * payments API, status-read opens status, and only the ungranted payments-admin policy opens payments-admin.
 */
export function resourceConfig(): Partial<BrokerConfigInput> {
  return {
    policies: {
      'payments-read': { apis: [{ apiId: 'payments' }] },
      'payments-write': { apis: [{ apiId: 'payments' }] },
      'status-read': { apis: [{ apiId: 'status' }] },
      'payments-admin': { apis: [{ apiId: 'payments-admin' }] },
    },
    apis: [
      { apiId: 'payments', urls: [`${GATEWAY}/payments/`] },
      { apiId: 'payments-admin', urls: [`${GATEWAY}/payments-admin/`] },
      { apiId: 'status', urls: [`${GATEWAY}/status/`] },
    ],
  };
}
