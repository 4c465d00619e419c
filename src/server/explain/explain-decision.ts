import { BrokerError, type ReasonCode } from '../errors.js';
import { argoContextOf, type WorkloadIdentity } from '../identity/workload-identity.js';
import { decideGrant } from '../rules/decide-grant.js';
import { compileResourceTargets } from '../rules/resource-targets.js';
import type { ResourceIndicator } from '../rules/resource-indicator.js';
import { buildAccessTokenClaims } from '../mint/access-token-claims.js';
import type { BrokerConfig } from '../config/schema.js';
import type { CompiledRules } from '../rules/compiled-rules.js';
import type { TrustTier } from '../rules/trust-tiers.js';

/** Stands in for the `jti` of an explained token: the real one is drawn when a token is minted. */
export const EXPLAINED_JTI = '(generated at exchange)';

/**
 * How the identity being explained was established. Only `verified` went through the exchange's verification
 * (signature, expiry, audience, pod binding); the other two are what an operator typed or pasted.
 */
export type ExplanationVerification = 'verified' | 'unverified: decoded offline' | 'identity fixture';

/** The workload as the rules see it. Never the subject token, nor its raw claims. */
export interface ExplainedIdentity {
  /** The configured issuer name. */
  readonly issuer: string;
  /** The subject token's `iss`. */
  readonly issuerUrl: string;
  readonly subject: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly pod?: string;
  /** Argo workflow run (pod label), when the pod's metadata was read. */
  readonly workflow?: string;
  /** Argo workflow node (pod annotation), when the pod's metadata was read. */
  readonly node?: string;
  /** The Kubernetes node the pod runs on (from the token). */
  readonly nodeName?: string;
  /** Which Kubernetes metadata was available to the rules; a rule reading an unavailable set cannot match. */
  readonly labelSets: {
    readonly namespaceLabels: boolean;
    readonly serviceAccountLabels: boolean;
    readonly podLabels: boolean;
    readonly podAnnotations: boolean;
  };
}

/** One rule's verdict, with who controls what it reads. */
export interface ExplainedRule {
  readonly name: string;
  readonly tier: TrustTier;
  readonly matched: boolean;
  /** The first condition that failed; absent when the rule matched. */
  readonly reason?: string;
  /** Policies a matched rule could not produce (a template without a value, or outside allowedPolicies). */
  readonly dropped?: readonly string[];
}

export interface GrantedOutcome {
  readonly decision: 'granted';
  readonly policies: readonly string[];
  readonly audience: string;
  readonly ttlSeconds: number;
  /** The claims a minted token would carry; `jti` is EXPLAINED_JTI. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface DeniedOutcome {
  readonly decision: 'denied';
  /** The reason code POST /token would answer with. */
  readonly reason: ReasonCode;
  /** The client-safe description POST /token would answer with. */
  readonly description: string;
}

/** Why a workload gets what it gets: the whole decision of an exchange, short of minting. */
export interface Explanation {
  readonly verification: ExplanationVerification;
  readonly identity: ExplainedIdentity;
  /** What was asked: the scope (absent: everything granted), the resource (absent: none) and the audience after defaulting. */
  readonly request: { readonly scope?: readonly string[]; readonly resource?: string; readonly audience: string };
  readonly rules: readonly ExplainedRule[];
  /** Granted without asking. */
  readonly granted: readonly string[];
  /** Granted only when named in `scope`. */
  readonly requestable: readonly string[];
  readonly outcome: GrantedOutcome | DeniedOutcome;
  /** Caveats about how the identity was established (offline decoding, metadata taken from a fixture). */
  readonly notes: readonly string[];
}

/**
 * A workload refused before the rules were applied (an unknown issuer, a token without the Kubernetes claims):
 * there is no identity to explain, only the refusal.
 */
export interface RefusalExplanation {
  readonly verification: ExplanationVerification;
  readonly outcome: DeniedOutcome;
  readonly notes: readonly string[];
}

export interface ExplainInput {
  readonly config: Pick<BrokerConfig, 'tokens' | 'server' | 'apis' | 'policies'>;
  readonly rules: CompiledRules;
  readonly identity: WorkloadIdentity;
  /** Requested policies (the `scope` parameter); undefined: everything granted. */
  readonly scope?: readonly string[] | undefined;
  /** Requested audience; undefined: tokens.audience. */
  readonly audience?: string | undefined;
  /** The API asked for (RFC 8707 `resource`); undefined: none. */
  readonly resource?: ResourceIndicator | undefined;
  readonly nowSeconds: number;
  readonly verification: ExplanationVerification;
  readonly notes?: readonly string[];
}

/** The identity as the explanation shows it. Pure. */
export function explainIdentity(identity: WorkloadIdentity): ExplainedIdentity {
  const { workflow, node } = argoContextOf(identity);
  const cluster = identity.cluster;
  return {
    issuer: identity.issuerName,
    issuerUrl: identity.issuer,
    subject: identity.subject,
    ...(identity.namespace !== undefined && { namespace: identity.namespace }),
    ...(identity.serviceAccount !== undefined && { serviceAccount: identity.serviceAccount }),
    ...(identity.podName !== undefined && { pod: identity.podName }),
    ...(workflow !== undefined && { workflow }),
    ...(node !== undefined && { node }),
    ...(identity.nodeName !== undefined && { nodeName: identity.nodeName }),
    labelSets: {
      namespaceLabels: cluster?.namespaceLabels !== undefined,
      serviceAccountLabels: cluster?.serviceAccountLabels !== undefined,
      podLabels: cluster?.podLabels !== undefined,
      podAnnotations: cluster?.podAnnotations !== undefined,
    },
  };
}

/** A BrokerError as the denial POST /token would answer with. */
export function deniedOutcome(error: BrokerError): DeniedOutcome {
  return { decision: 'denied', reason: error.code, description: error.description };
}

/**
 * Explains what an exchange would decide for this identity: the exchange's own decision (`decideGrant`: every
 * rule, the requested scope and resource, the audience), then the claims it would mint (where a `sub` template variable the
 * identity lacks refuses with missing_claim, as it does at the exchange). Nothing is minted. Pure: the same input
 * gives the same explanation.
 */
export function explainDecision(input: ExplainInput): Explanation {
  const { tokens } = input.config;
  const { identity, rules } = input;
  // Compiled per explanation: explain is rare, and a resource-free one needs no tables at all.
  const targets = input.resource === undefined ? undefined : compileResourceTargets(input.config.apis, input.config.policies);
  const decided = decideGrant(rules, identity, { scope: input.scope, audience: input.audience, resource: input.resource }, tokens, targets);
  const decision = decided.evaluation;
  const explainedRules = rules.rules.map((rule, i): ExplainedRule => {
    const verdict = decision.verdicts[i];
    // evaluateRules returns one verdict per rule, in order; anything else is a bug worth failing loudly on.
    if (verdict === undefined || verdict.rule !== rule.name) throw new Error(`no verdict for rule "${rule.name}"`);
    return {
      name: rule.name,
      tier: rule.tier,
      matched: verdict.matched,
      ...(verdict.reason !== undefined && { reason: verdict.reason }),
      ...(verdict.dropped !== undefined && verdict.dropped.length > 0 && { dropped: verdict.dropped }),
    };
  });
  const audience = input.audience ?? tokens.audience;

  let outcome: GrantedOutcome | DeniedOutcome;
  if (!decided.granted) {
    outcome = deniedOutcome(decided.refusal);
  } else {
    const { grant } = decided;
    try {
      const claims = buildAccessTokenClaims(grant, tokens, { issuer: input.config.server.publicUrl, nowSeconds: input.nowSeconds, jti: EXPLAINED_JTI });
      outcome = { decision: 'granted', policies: [...grant.policies], audience: grant.audience, ttlSeconds: grant.ttlSeconds, claims };
    } catch (error) {
      if (!(error instanceof BrokerError)) throw error;
      outcome = deniedOutcome(error);
    }
  }

  return {
    verification: input.verification,
    identity: explainIdentity(identity),
    request: {
      ...(input.scope !== undefined && { scope: [...input.scope] }),
      ...(input.resource !== undefined && { resource: `${input.resource.origin}${input.resource.path}` }),
      audience,
    },
    rules: explainedRules,
    granted: [...decision.policies],
    requestable: [...decision.requestable],
    outcome,
    notes: [...(input.notes ?? [])],
  };
}
