import { verifySubjectToken, type VerifiedSubjectToken } from '../issuers/verify-subject-token.js';
import { identityFromClaims, type Claims, type WorkloadIdentity } from '../identity/workload-identity.js';
import type { IssuerConfig } from '../config/schema.js';
import { checkWithCluster, type ClusterAccess } from '../identity/cluster-checks.js';
import type { CompiledRules } from '../rules/compiled-rules.js';
import type { TrustedIssuers } from '../issuers/trusted-issuers.js';
import type { VerifiedTokenCache } from '../issuers/verified-token-cache.js';

export interface WorkloadResolverDependencies {
  readonly issuers: TrustedIssuers;
  /** Compiled once at start; a configuration reload would build a new resolver around the new rules. */
  readonly rules: CompiledRules;
  readonly clusterFor?: ((issuerName: string) => ClusterAccess | undefined) | undefined;
  readonly now: () => number;
  /** True when the `sub` template reads {workflow} or {node}, which come from the pod. */
  readonly subjectNeedsPod: boolean;
  /** Re-presented tokens skip signature verification (never the time or cluster checks). */
  readonly verifiedTokens?: VerifiedTokenCache | undefined;
  /** Replaces verifySubjectToken (the broker gives a traced one when tracing is on). */
  readonly verify?: typeof verifySubjectToken | undefined;
}

/** Told what resolution established as it goes, so a refusal is still recorded with it (ExchangeRecord). */
export interface ResolutionRecorder {
  verifiedToken(verified: VerifiedSubjectToken): void;
  identified(identity: WorkloadIdentity): void;
}

export interface ResolvedWorkload {
  readonly verified: VerifiedSubjectToken;
  readonly identity: WorkloadIdentity;
  /** The rule set the identity was prepared for (lookups follow its needs); evaluate with this one. */
  readonly rules: CompiledRules;
}

/**
 * From a subject token to a workload the rules can judge: verify the token, read the identity from its claims,
 * then check it with the cluster's API (TokenReview, pod binding, labels) when Kubernetes is enabled for its
 * issuer. Shared by the exchange and the explain endpoint, so both judge exactly the same identity.
 */
export function createWorkloadResolver(deps: WorkloadResolverDependencies) {
  // The identity read from a re-presented token's claims, kept as long as the verified-token cache keeps those claims
  // (the same frozen object on every hit): reading it again was ~4% of a cached exchange's CPU.
  const identities = new WeakMap<Claims, { readonly issuer: IssuerConfig; readonly identity: WorkloadIdentity }>();
  function identityOf(issuer: IssuerConfig, claims: Claims): WorkloadIdentity {
    const known = identities.get(claims);
    if (known !== undefined && known.issuer === issuer) return known.identity;
    const identity = Object.freeze(identityFromClaims(issuer, claims));
    if (Object.isFrozen(claims)) identities.set(claims, { issuer, identity });
    return identity;
  }

  const verify = deps.verify ?? verifySubjectToken;
  return async function resolveWorkload(subjectToken: string, recorder?: ResolutionRecorder): Promise<ResolvedWorkload> {
    const verified = await verify(subjectToken, deps.issuers, deps.now, deps.verifiedTokens);
    recorder?.verifiedToken(verified);
    let identity = identityOf(verified.issuer.config, verified.claims);
    recorder?.identified(identity);
    const { rules } = deps;
    const cluster = deps.clusterFor?.(identity.issuerName);
    if (cluster !== undefined) {
      identity = await checkWithCluster(identity, subjectToken, verified.issuer.config.audiences, cluster, {
        ...rules.needs,
        pod: rules.needs.pod || deps.subjectNeedsPod,
      });
      recorder?.identified(identity);
    }
    return { verified, identity, rules };
  };
}

export type ResolveWorkload = ReturnType<typeof createWorkloadResolver>;
