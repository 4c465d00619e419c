import { REDIS_UNAVAILABLE, type RedisConnection } from '../cache/redis-connection.js';
import type { AuditRecord } from './audit-record.js';
import type { DenyAuditRecord } from '../deny/deny-audit-record.js';

/**
 * Appends audit records to a Redis stream, trimmed approximately (MAXLEN ~) so it stays bounded without
 * costing a full trim per write. Best effort: the audit log line is written first and is the record of
 * truth; a failed append is counted and logged by the caller.
 */
export class RedisAuditStream {
  constructor(
    private readonly connection: RedisConnection,
    private readonly key: string,
    private readonly maxLen: number,
  ) {}

  async append(record: AuditRecord | DenyAuditRecord): Promise<boolean> {
    const result = await this.connection.attempt((client) =>
      client.xadd(this.key, 'MAXLEN', '~', String(this.maxLen), '*', 'record', JSON.stringify(record)),
    );
    return result !== REDIS_UNAVAILABLE;
  }
}
