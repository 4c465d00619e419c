import { BrokerError } from '../errors.js';
import { denyKind, type Deny } from './deny.js';

/**
 * The refusal of a denied workload: 403 access_denied, reason `denied`. The description carries the operator's
 * reason (sanitized when the deny was made), so the workload's owner learns why and whom to ask; the deny id goes to
 * the exchange's log line and audit record, where `deny list` finds it.
 */
export function deniedError(deny: Deny): BrokerError {
  return new BrokerError('denied', {
    oauthError: 'access_denied',
    status: 403,
    description: `An operator has denied tokens to this workload: ${deny.reason}`,
    detail: `deny ${deny.id} (${denyKind(deny)}) until ${deny.until === undefined ? 'removed' : new Date(deny.until).toISOString()}`,
    facts: { denyId: deny.id, denyKind: denyKind(deny) },
  });
}
