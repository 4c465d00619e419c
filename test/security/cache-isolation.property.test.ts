import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { tokenCacheKey } from '../../src/server/cache/cache-key.js';
import { MemoryTokenCache } from '../../src/server/cache/memory-token-cache.js';
import { RedisTokenCache } from '../../src/server/cache/redis-token-cache.js';
import { RedisConnection, createRedisClient } from '../../src/server/cache/redis-connection.js';
import { mintInputOf } from '../../src/server/mint/access-token-claims.js';
import type { Grant } from '../../src/server/rules/decide-grant.js';
import { ARGO_NODE_ANNOTATION, ARGO_WORKFLOW_LABEL, type WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import type { TokenCache } from '../../src/server/cache/token-cache.js';
import { TOKENS_SUB_ONLY } from '../support/tokens-config.js';

/*
 * The invariant of docs/threat-model.md: "the cache never returns a token minted for other inputs". Pairs of grants
 * that differ in exactly one input of the minted claims (or of the verified workload instance) never share a cache
 * key, and so never share a cached token, in memory or in a real Redis. The key is derived the way the exchange
 * derives it: mintInputOf, then tokenCacheKey.
 */

const TOKENS = TOKENS_SUB_ONLY;
const CONTEXT = { rulesVersion: 'rules-v1', generation: 'kid-1' };
const PUBLIC_URL = 'https://token-broker.test';

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const policy = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);

interface Inputs {
  issuer: string;
  issuerName: string;
  subject: string;
  namespace: string | undefined;
  serviceAccount: string | undefined;
  podName: string | undefined;
  podUid: string | undefined;
  workflow: string | undefined;
  node: string | undefined;
  audience: string;
  policies: string[];
  ttlSeconds: number;
}

const inputs: fc.Arbitrary<Inputs> = fc.record({
  issuer: label.map((l) => `https://${l}.example`),
  issuerName: label,
  subject: fc.string({ minLength: 1, maxLength: 20 }),
  namespace: fc.option(label, { nil: undefined }),
  serviceAccount: fc.option(label, { nil: undefined }),
  podName: fc.option(label, { nil: undefined }),
  podUid: fc.option(fc.uuid(), { nil: undefined }),
  workflow: fc.option(label, { nil: undefined }),
  node: fc.option(label, { nil: undefined }),
  audience: fc.constantFrom('tyk', 'tyk-internal'),
  policies: fc.array(policy, { minLength: 1, maxLength: 4 }),
  ttlSeconds: fc.integer({ min: 60, max: 3600 }),
});

/** Each input of a minted token, and how to change it into another value. */
const changes: readonly { field: keyof Inputs; to: fc.Arbitrary<unknown> }[] = [
  { field: 'issuer', to: label.map((l) => `https://${l}.other`) },
  { field: 'issuerName', to: label },
  { field: 'subject', to: fc.string({ minLength: 1, maxLength: 20 }) },
  { field: 'namespace', to: fc.option(label, { nil: undefined }) },
  { field: 'serviceAccount', to: fc.option(label, { nil: undefined }) },
  { field: 'podName', to: fc.option(label, { nil: undefined }) },
  { field: 'podUid', to: fc.option(fc.uuid(), { nil: undefined }) },
  { field: 'workflow', to: fc.option(label, { nil: undefined }) },
  { field: 'node', to: fc.option(label, { nil: undefined }) },
  { field: 'audience', to: fc.constantFrom('tyk', 'tyk-internal', 'orders') },
  { field: 'policies', to: fc.array(policy, { minLength: 1, maxLength: 4 }) },
  { field: 'ttlSeconds', to: fc.integer({ min: 60, max: 3600 }) },
];

/** A base grant and the same grant with exactly one input changed to a different value. */
const pairs = fc
  .tuple(inputs, fc.constantFrom(...changes))
  .chain(([base, change]) => change.to.map((value) => [base, { ...base, [change.field]: value } as Inputs, change.field] as const))
  .filter(([base, other, field]) => JSON.stringify(base[field]) !== JSON.stringify(other[field]));

function grantOf(i: Inputs): Grant {
  const podLabels = i.workflow === undefined ? undefined : { [ARGO_WORKFLOW_LABEL]: i.workflow };
  const podAnnotations = i.node === undefined ? undefined : { [ARGO_NODE_ANNOTATION]: i.node };
  const identity: WorkloadIdentity = {
    issuerName: i.issuerName,
    issuer: i.issuer,
    subject: i.subject,
    claims: {},
    ...(i.namespace !== undefined && { namespace: i.namespace }),
    ...(i.serviceAccount !== undefined && { serviceAccount: i.serviceAccount }),
    ...(i.podName !== undefined && { podName: i.podName }),
    ...(i.podUid !== undefined && { podUid: i.podUid }),
    ...((podLabels !== undefined || podAnnotations !== undefined) && {
      cluster: { ...(podLabels !== undefined && { podLabels }), ...(podAnnotations !== undefined && { podAnnotations }) },
    }),
  };
  return { identity, policies: i.policies, audience: i.audience, ttlSeconds: i.ttlSeconds };
}

const keyOf = (i: Inputs) => {
  const grant = grantOf(i);
  return tokenCacheKey(mintInputOf(grant, TOKENS, PUBLIC_URL), grant.identity, CONTEXT);
};

/** Caches A's token under A's key and asserts that B's key finds nothing, while A's finds A's token. */
async function assertIsolated(cache: TokenCache, a: Inputs, b: Inputs): Promise<void> {
  const token = `token-of-${randomUUID()}`;
  await cache.set(keyOf(a), { token, expiresAt: 2_000_000_000, jti: randomUUID(), policies: a.policies }, 600);
  const other = await cache.get(keyOf(b));
  assert.equal(other.status, 'miss', 'another identity\'s lookup finds nothing');
  const own = await cache.get(keyOf(a));
  assert.ok(own.status === 'hit' && own.value.token === token, 'the identity itself finds its token');
}

describe('security (property): grants differing in one input never share a cached token', { timeout: 120_000 }, () => {
  it('never share a cache key (2,000 pairs)', () => {
    fc.assert(
      fc.property(pairs, ([a, b]) => {
        assert.notEqual(keyOf(a), keyOf(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('never get each other\'s token from the in-process cache (500 pairs)', async () => {
    const cache = new MemoryTokenCache(10_000, () => 1_700_000_000_000);
    await fc.assert(fc.asyncProperty(pairs, ([a, b]) => assertIsolated(cache, a, b)), { numRuns: 500 });
  });

  it('equal inputs, built separately, do share the key: the cache still serves re-presented tokens', () => {
    fc.assert(
      fc.property(inputs, (i) => {
        assert.equal(keyOf(i), keyOf(structuredClone(i)));
      }),
      { numRuns: 200 },
    );
  });
});

const skip = redisUnavailableReason();

describe('security (property): the same in a real Redis', { skip, timeout: 120_000 }, () => {
  let server: RedisServer;
  let connection: RedisConnection;

  before(async () => {
    server = await startRedisServer();
    const keyPrefix = `isolation-${randomUUID()}:`;
    connection = new RedisConnection(createRedisClient({ url: server.url, keyPrefix, commandTimeoutMs: 1000 }), keyPrefix, pino({ level: 'silent' }));
    await connection.waitUntilUp(5000);
  });
  after(async () => {
    await connection.close();
    await server.stop();
  });

  it('never get each other\'s token from RedisTokenCache (200 pairs)', async () => {
    const cache = new RedisTokenCache(connection);
    await fc.assert(fc.asyncProperty(pairs, ([a, b]) => assertIsolated(cache, a, b)), { numRuns: 200 });
  });
});
