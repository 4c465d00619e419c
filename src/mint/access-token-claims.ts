import { invalidRequest } from '../errors.js';
import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import type { TokensConfig } from '../config/schema.js';

/** What the minted token grants and to whom: everything that determines its claims except time and jti. */
export interface Grant {
  readonly identity: WorkloadIdentity;
  readonly policies: readonly string[];
  readonly audience: string;
  readonly ttlSeconds: number;
}

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
 * Builds the claims of an access token for Tyk. `exp` is always set (Tyk does not require it), the policy
 * claim holds the first policy and the scope claim all of them (Tyk's scope-to-policy mapping), and no
 * claim Tyk would treat as an OAuth client id is ever emitted. Pure.
 */
export function buildAccessTokenClaims(
  grant: Grant,
  tokens: TokensConfig,
  context: { readonly issuer: string; readonly nowSeconds: number; readonly jti: string },
): Record<string, unknown> {
  const { identity } = grant;
  const workload: Record<string, string> = { issuer: identity.issuerName };
  if (identity.namespace !== undefined) workload.namespace = identity.namespace;
  if (identity.serviceAccount !== undefined) workload.serviceAccount = identity.serviceAccount;
  if (identity.podName !== undefined) workload.pod = identity.podName;
  const argo = argoContextOf(identity);
  if (argo.workflow !== undefined) workload.workflow = argo.workflow;
  if (argo.node !== undefined) workload.node = argo.node;
  return {
    iss: context.issuer,
    sub: renderSubject(tokens.subject, identity),
    aud: grant.audience,
    iat: context.nowSeconds,
    nbf: context.nowSeconds,
    exp: context.nowSeconds + grant.ttlSeconds,
    jti: context.jti,
    [tokens.policyClaim]: grant.policies[0],
    [tokens.scopeClaim]: grant.policies.join(' '),
    [tokens.contextClaim]: workload,
  };
}
