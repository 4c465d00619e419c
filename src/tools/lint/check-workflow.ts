import type { WorkflowView } from './argo-model.js';
import { checkBrokerCall } from './check-broker-calls.js';
import { checkHttp } from './check-http-template.js';
import { checkContainerLiterals, checkParameters } from './check-literals.js';
import { checkReadOnce } from './check-read-once.js';
import { checkSecretToGateway } from './check-secret-to-gateway.js';
import type { LintContext, LintSettings, RawFinding } from './lint-context.js';

export type { LintSettings, RawFinding } from './lint-context.js';

/**
 * Runs every rule over one Argo object. The rules live one concern per module (check-*.ts): literal credentials,
 * HTTP templates, calls to the broker, the expiry trap, Secret-held keys sent to the gateway.
 */

/** Every finding in one Argo object. `text` is the whole file the document was parsed from. */
export function checkWorkflow(workflow: WorkflowView, text: string, settings: LintSettings): RawFinding[] {
  const context: LintContext = { text, workflow, settings, findings: [] };
  checkParameters(context, workflow.parameters, undefined);
  for (const template of workflow.templates) {
    checkParameters(context, template.parameters, template.name);
    checkHttp(context, template);
    for (const container of template.containers) {
      checkContainerLiterals(context, template, container);
      checkBrokerCall(context, template, container);
      checkReadOnce(context, template, container);
      checkSecretToGateway(context, template, container);
    }
  }
  // A workflow-level volume shared by several containers is one problem, reported once.
  const seen = new Set<string>();
  return context.findings
    .filter((finding) => {
      const key = `${finding.ruleId}@${finding.offset}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => a.offset - b.offset);
}
