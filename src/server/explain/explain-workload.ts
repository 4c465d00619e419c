import { explainDecision, type Explanation } from './explain-decision.js';
import type { BrokerConfig } from '../config/schema.js';
import type { ResolveWorkload } from '../exchange/resolve-workload.js';
import type { ResourceIndicator } from '../rules/resource-indicator.js';

/** What POST /v1/explain asks: the caller's own subject token, and optionally the scope, resource and audience of an exchange. */
export interface ExplainRequest {
  readonly subjectToken: string;
  readonly scope: readonly string[] | undefined;
  readonly resource: ResourceIndicator | undefined;
  readonly audience: string | undefined;
}

export interface WorkloadExplainerDependencies {
  readonly config: Pick<BrokerConfig, 'tokens' | 'server' | 'apis' | 'policies'>;
  /** The exchange's own resolution (verification, pod binding, labels), so both judge the same identity. */
  readonly resolveWorkload: ResolveWorkload;
  readonly now: () => number;
}

/** Explains the decision for the workload the subject token proves; rejects exactly as an exchange would. */
export type ExplainWorkload = (request: ExplainRequest) => Promise<Explanation>;

/**
 * The explain use case: resolve the subject token as an exchange does (a token the exchange would refuse is
 * refused here with the same error), then explain the rules' decision for that identity only. Mints nothing
 * and emits no exchange outcome, so no metric counts it as an exchange and no audit record is written.
 */
export function createWorkloadExplainer(deps: WorkloadExplainerDependencies): ExplainWorkload {
  return async function explainWorkload(request) {
    const { identity, rules } = await deps.resolveWorkload(request.subjectToken);
    return explainDecision({
      config: deps.config,
      rules,
      identity,
      scope: request.scope,
      resource: request.resource,
      audience: request.audience,
      nowSeconds: Math.floor(deps.now() / 1000),
      verification: 'verified',
    });
  };
}
