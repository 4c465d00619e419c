import type { ScalarView, WorkflowView } from './argo-model.js';
import type { FixPlan } from './fix-plan.js';
import type { RuleId } from './lint-rules.js';
import { locateInScalar, nodeStart } from './source-map.js';

/**
 * What the rule modules (check-*.ts) share: the settings, the finding they produce, the context they report into
 * and the one-line fixes more than one rule gives.
 */

/** What the rules need to know beyond the document. */
export interface LintSettings {
  /** The audience the broker accepts on subject tokens (--audience). */
  readonly audience: string;
  /** The broker's URL, when known (--broker-url): a step mentioning it calls the broker. */
  readonly brokerUrl: string | undefined;
  /** The URL written into suggested exchanges: --broker-url, else the README's in-cluster address. */
  readonly suggestedBrokerUrl: string;
}

/** A finding before its offset becomes a line and column. */
export interface RawFinding {
  readonly ruleId: RuleId;
  /** File offset the finding points at. */
  readonly offset: number;
  /** One line: what is wrong, where. Never contains the credential itself. */
  readonly message: string;
  /** One line: what to do. */
  readonly fix: string;
  /** The template the finding is about, when there is one. */
  readonly template: string | undefined;
  /** A mechanical fix, when there is one. */
  readonly plan: FixPlan | undefined;
}

// One-line fixes, shared by the rules that give them.
export const FIX_EXCHANGE = 'Mount a projected service-account token and exchange it at the broker for each call instead (--suggest shows the change).';
export const FIX_EXCHANGE_MANUAL =
  'Remove the literal: mount a projected service-account token with the broker audience and exchange it at the broker for each call.';
export const FIX_GATEWAY_SECRET = 'Keep the Gateway secret out of the template: mount it from a Secret as a file and read it for each call.';
export const FIX_HTTP_TEMPLATE =
  'Move the call into a container step that exchanges a projected service-account token at the broker (HTTP templates cannot mount one).';
export const FIX_NAMED_LITERAL =
  'Remove the literal: reference a Secret (valueFrom.secretKeyRef) or, for API access, exchange a projected service-account token at the broker.';
export const FIX_PARAMETER = 'Pass no credential as a parameter: let the step that needs one exchange its projected service-account token at the broker.';

/** What every rule reads (the file, the object, the settings) and where it reports. */
export interface LintContext {
  readonly text: string;
  readonly workflow: WorkflowView;
  readonly settings: LintSettings;
  readonly findings: RawFinding[];
}

/** The file offset of a match inside a scalar, or of the scalar itself when the match cannot be located verbatim. */
export function offsetOf(context: LintContext, scalar: ScalarView, index: number, length: number): number {
  return locateInScalar(context.text, scalar.node, scalar.value, index, length) ?? nodeStart(scalar.node);
}

/** Records a finding. */
export function report(context: LintContext, finding: Omit<RawFinding, 'plan'> & { plan?: FixPlan | undefined }): void {
  context.findings.push({ ...finding, plan: finding.plan });
}
