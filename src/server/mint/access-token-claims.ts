import { invalidRequest } from '../errors.js';
import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import type { TokensConfig } from '../config/schema.js';
import type { Grant } from '../rules/decide-grant.js';

/** True when the `sub` template reads {workflow} or {node}, which only the pod's metadata carries. */
export function subjectTemplateNeedsPod(template: string): boolean {
  return /\{(workflow|node)\}/.test(template);
}

/** Expands the `sub` template; a variable the identity does not carry is the caller's problem, said plainly. */
export function renderSubject(template: string, identity: WorkloadIdentity): string {
  const values: Record<string, string | undefined> = {
    issuer: identity.issuerName,
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccount,
    pod: identity.podName,
    sub: identity.subject,
    ...argoContextOf(identity),
  };
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    // Own members only: `{constructor}` must not resolve to Object.prototype.constructor.
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined) {
      throw invalidRequest('missing_claim', `The broker names minted tokens with {${name}}, which the subject token does not carry.`, {
        facts: { claim: name },
      });
    }
    return value;
  });
}

/**
 * Everything a minted credential says except when it was minted and its id: the claims without `iat`, `nbf`, `exp`
 * and `jti`, the policy list (Tyk keys apply it as a list) and the lifetime. Minters read nothing else, and the
 * cache key hashes all of it, so a cached credential can only be served for inputs that would mint the same one.
 */
export interface MintInput {
  /** `iss`, `sub`, `aud`, the policy, scope and workload-context claims, in that order. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly policies: readonly string[];
  readonly ttlSeconds: number;
}

/** The workload context claim: the verified facts Tyk analytics and API handlers read about the caller. */
export function workloadContextOf(identity: WorkloadIdentity): Record<string, string> {
  const workload: Record<string, string> = { issuer: identity.issuerName };
  if (identity.namespace !== undefined) workload.namespace = identity.namespace;
  if (identity.serviceAccount !== undefined) workload.serviceAccount = identity.serviceAccount;
  if (identity.podName !== undefined) workload.pod = identity.podName;
  const argo = argoContextOf(identity);
  if (argo.workflow !== undefined) workload.workflow = argo.workflow;
  if (argo.node !== undefined) workload.node = argo.node;
  return workload;
}

/**
 * Derives the mint input of a grant: the one place that decides what a minted credential says. `exp` is always
 * set later (Tyk does not require it), the policy claim holds the first policy and the scope claim all of them
 * (Tyk's scope-to-policy mapping), and no claim Tyk would treat as an OAuth client id is ever emitted. Pure.
 */
export function mintInputOf(grant: Grant, tokens: TokensConfig, issuer: string): MintInput {
  return {
    claims: {
      iss: issuer,
      sub: renderSubject(tokens.subject, grant.identity),
      aud: grant.audience,
      [tokens.policyClaim]: grant.policies[0],
      [tokens.scopeClaim]: grant.policies.join(' '),
      [tokens.contextClaim]: workloadContextOf(grant.identity),
    },
    policies: grant.policies,
    ttlSeconds: grant.ttlSeconds,
  };
}

/** The claims of an access token for Tyk: the mint input's claims with the times and the token's id. Pure. */
export function timedAccessTokenClaims(input: MintInput, context: { readonly nowSeconds: number; readonly jti: string }): Record<string, unknown> {
  const { iss, sub, aud, ...rest } = input.claims;
  return {
    iss,
    sub,
    aud,
    iat: context.nowSeconds,
    nbf: context.nowSeconds,
    exp: context.nowSeconds + input.ttlSeconds,
    jti: context.jti,
    ...rest,
  };
}

/** Builds the claims of an access token for Tyk from a grant (mintInputOf, then timedAccessTokenClaims). Pure. */
export function buildAccessTokenClaims(
  grant: Grant,
  tokens: TokensConfig,
  context: { readonly issuer: string; readonly nowSeconds: number; readonly jti: string },
): Record<string, unknown> {
  return timedAccessTokenClaims(mintInputOf(grant, tokens, context.issuer), context);
}
