import type { ContainerView, EnvView, ScalarView, TemplateView, WorkflowView } from './argo-model.js';
import { joinScalars, runText, variablesOf } from './container-text.js';
import {
  availableVolumes,
  ensureProjectedToken,
  hasAudience,
  mountedTokens,
  type FixPlan,
  type MountedToken,
  type ScalarReplacement,
  type StructuralEdit,
} from './fix-plan.js';
import { offsetOf, report, type LintContext } from './lint-context.js';
import {
  DEFAULT_SERVICE_ACCOUNT_TOKEN,
  commandLines,
  findBrokerCall,
  findTokenReads,
  looksLikeTokenFile,
  mentionsVariable,
  namesBrokerEndpoint,
  tokenVariables,
  variableReferences,
  type TokenRead,
} from './script-text.js';
import { nodeStart } from './source-map.js';

/** A token read located in a scalar (or an environment variable holding a token file path). */
interface LocatedRead {
  readonly read: TokenRead;
  readonly scalar: ScalarView;
  /** Set when the read is an environment variable whose value is the path. */
  readonly variable: EnvView | undefined;
}

/**
 * The token files a container sends to the broker. Where the script's commands can be told apart, only the
 * commands that name the token endpoint count (a later `curl -H "Authorization: Bearer $(cat /tmp/api-token)"`
 * to the gateway sends the broker's answer, not a subject token); a `$VAR` assigned from a token file counts as
 * that file. Otherwise (the endpoint only in an environment variable, exec-form arguments) every token read does.
 */
function tokenReads(container: ContainerView, projectedFiles: ReadonlySet<string>, brokerUrl: string | undefined): LocatedRead[] {
  const variables = variablesOf(container);
  const isTokenFile = (path: string): boolean => looksLikeTokenFile(path, projectedFiles);
  const scripts = runText(container);
  const brokerCommands = scripts.flatMap((scalar) =>
    commandLines(scalar.value)
      .filter((command) => namesBrokerEndpoint(scalar.value.slice(command.start, command.end), brokerUrl))
      .map((command) => ({ scalar, ...command })),
  );
  const scoped = brokerCommands.length > 0;
  const inScope = (scalar: ScalarView, index: number): boolean =>
    !scoped || brokerCommands.some((command) => command.scalar === scalar && index >= command.start && index < command.end);
  const scopeText = scoped
    ? brokerCommands.map((command) => command.scalar.value.slice(command.start, command.end)).join('\n')
    : scripts.map((scalar) => scalar.value).join('\n');

  const reads: LocatedRead[] = [];
  for (const scalar of scripts) {
    for (const read of findTokenReads(scalar.value, variables)) {
      if (isTokenFile(read.path) && inScope(scalar, read.index)) reads.push({ read, scalar, variable: undefined });
    }
    for (const [name, path] of tokenVariables(scalar.value, variables, isTokenFile)) {
      for (const reference of variableReferences(scalar.value, name)) {
        if (!inScope(scalar, reference.index)) continue;
        const written = scalar.value.slice(reference.index, reference.index + reference.length);
        reads.push({ read: { written, path, index: reference.index }, scalar, variable: undefined });
      }
    }
  }
  // A path handed over in an environment variable (TOKEN_FILE=/var/run/...) that the script uses by name.
  for (const variable of container.env) {
    const value = variable.value;
    if (value === undefined || !value.value.startsWith('/') || !isTokenFile(value.value)) continue;
    if (reads.some((located) => located.read.path === value.value)) continue;
    if (mentionsVariable(scopeText, variable.name)) reads.push({ read: { written: value.value, path: value.value, index: 0 }, scalar: value, variable });
  }
  return reads;
}

/** Legacy Secret-based tokens a container can see: Argo's exec-sa-token volume, or a service-account-token Secret. */
function legacyTokenMounts(container: ContainerView, template: TemplateView, workflow: WorkflowView): string[] {
  const volumes = availableVolumes(template, workflow);
  return container.mounts
    .filter((mount) => {
      if (mount.name === 'exec-sa-token') return true;
      const secret = volumes.find((volume) => volume.name === mount.name)?.secretName;
      return secret !== undefined && /service-account-token$/.test(secret);
    })
    .map((mount) => mount.mountPath.replace(/\/+$/, ''));
}

/** Point the step's token reads at the projected token (adding it when needed). */
function tokenPathPlan(context: LintContext, template: TemplateView, container: ContainerView, reads: readonly LocatedRead[]): FixPlan | undefined {
  const token = ensureProjectedToken(container, template, context.workflow, context.settings.audience);
  if (token === undefined) return undefined;
  const edits: StructuralEdit[] = [...token.edits];
  const byScalar = new Map<ScalarView, ScalarReplacement[]>();
  for (const located of reads) {
    if (located.read.path === token.file) continue;
    if (located.read.written !== located.read.path) return undefined; // read through a variable: not mechanical
    if (located.variable !== undefined) {
      edits.push({ op: 'set-scalar', path: located.scalar.path, value: token.file });
      continue;
    }
    const replacements = byScalar.get(located.scalar) ?? [];
    replacements.push({ index: located.read.index, length: located.read.written.length, text: token.file });
    byScalar.set(located.scalar, replacements);
  }
  for (const [scalar, replacements] of byScalar) edits.push({ op: 'replace-in-scalar', path: scalar.path, replacements });
  return edits.length === 0 ? undefined : { edits };
}

function audiencePlan(mounted: MountedToken, audience: string): FixPlan {
  const edit: StructuralEdit =
    mounted.token.audience === undefined
      ? { op: 'add-key', path: mounted.token.path, key: 'audience', value: audience }
      : { op: 'set-scalar', path: mounted.token.audience.path, value: audience };
  return { edits: [edit] };
}

function reportWrongAudience(context: LintContext, template: TemplateView, mounted: MountedToken): void {
  const audience = mounted.token.audience;
  if (audience !== undefined && audience.value.includes('{{')) return; // set by a parameter: unknown here
  const actual = audience === undefined ? "the API server's (no audience set)" : `"${audience.value}"`;
  report(context, {
    ruleId: 'broker-token-wrong-audience',
    offset: nodeStart(audience?.node ?? mounted.token.node),
    message: `Template "${template.name}" sends the projected token of volume ${mounted.volume.name} to the broker, but its audience is ${actual}, not "${context.settings.audience}".`,
    fix: `Set serviceAccountToken.audience to ${context.settings.audience}.`,
    template: template.name,
    plan: audiencePlan(mounted, context.settings.audience),
  });
}

/**
 * Where a container calls the broker. The endpoint and the grant may sit in different arguments
 * (`curl URL -d grant_type=...`), and the broker URL may come from an environment variable, so the command,
 * args, source and environment values are searched together.
 */
function locateBrokerCall(context: LintContext, container: ContainerView): { scalar: ScalarView; index: number; length: number } | undefined {
  const values = container.env.flatMap((variable) => (variable.value === undefined ? [] : [variable.value]));
  const joined = joinScalars([...runText(container), ...values]);
  const found = findBrokerCall(joined.text, context.settings.brokerUrl);
  const at = found === undefined ? undefined : joined.locate(found.index);
  return found === undefined || at === undefined ? undefined : { ...at, length: found.length };
}

/**
 * A container that calls the broker must send a projected service-account token with the broker's audience,
 * mounted in that container: broker-call-without-projected-token, broker-token-wrong-audience and
 * legacy-service-account-token.
 */
export function checkBrokerCall(context: LintContext, template: TemplateView, container: ContainerView): void {
  const call = locateBrokerCall(context, container);
  if (call === undefined) return;
  // podSpecPatch can add volumes and mounts the rules cannot see: stay silent rather than guess.
  if (template.podSpecPatch?.value.includes('serviceAccountToken') === true) return;

  const mounted = mountedTokens(container, template, context.workflow);
  const projectedFiles = new Set(mounted.map((token) => token.file));
  const reads = tokenReads(container, projectedFiles, context.settings.brokerUrl);
  const where = container.role === 'main' ? '' : ` (${container.role} container "${container.name}")`;
  const callOffset = offsetOf(context, call.scalar, call.index, call.length);
  const legacySettings = template.settings.automount?.value === false && template.settings.executorServiceAccount !== undefined;
  const legacyMounts = legacyTokenMounts(container, template, context.workflow);

  if (reads.length === 0) {
    if (mounted.length === 0) {
      report(context, {
        ruleId: 'broker-call-without-projected-token',
        offset: callOffset,
        message: `Template "${template.name}"${where} calls the broker, but no projected service-account token is mounted in its container.`,
        fix: `Add a projected serviceAccountToken volume (audience ${context.settings.audience}) to the template, mount it, and send the file to the broker.`,
        template: template.name,
        plan: tokenPathPlan(context, template, container, []),
      });
    } else if (!mounted.some((token) => hasAudience(token.token, context.settings.audience))) {
      const first = mounted[0];
      if (first !== undefined) reportWrongAudience(context, template, first);
    }
    return;
  }

  const seen = new Set<string>();
  for (const located of reads) {
    const { read } = located;
    if (seen.has(read.path)) continue;
    seen.add(read.path);
    const offset = located.variable !== undefined ? nodeStart(located.scalar.node) : offsetOf(context, located.scalar, read.index, read.written.length);
    const token = mounted.find((candidate) => candidate.file === read.path);
    if (token !== undefined) {
      if (!hasAudience(token.token, context.settings.audience)) reportWrongAudience(context, template, token);
      continue;
    }
    const readsLegacyMount = legacyMounts.some((mountPath) => read.path.startsWith(`${mountPath}/`));
    if (readsLegacyMount || (legacySettings && read.path === DEFAULT_SERVICE_ACCOUNT_TOKEN)) {
      const why = readsLegacyMount
        ? `${read.path} is a legacy Secret-based token`
        : `with automountServiceAccountToken: false and executor.serviceAccountName ${template.settings.executorServiceAccount?.value ?? ''} the only service-account token Argo puts in the pod is that account's legacy token Secret, for its executor`;
      report(context, {
        ruleId: 'legacy-service-account-token',
        offset,
        message: `Template "${template.name}"${where} sends ${read.path} to the broker, but ${why}; the broker refuses legacy tokens.`,
        fix: `Mount a projected service-account token (audience ${context.settings.audience}) and send that file instead.`,
        template: template.name,
        plan: tokenPathPlan(context, template, container, [located]),
      });
      continue;
    }
    if (read.path.startsWith('$')) continue; // read through a variable the linter cannot resolve: unknown
    const message =
      read.path === DEFAULT_SERVICE_ACCOUNT_TOKEN
        ? `Template "${template.name}"${where} sends the default service-account token to the broker; its audience is the API server, so the broker refuses it.`
        : `Template "${template.name}"${where} sends ${read.path} to the broker, but no projected service-account token is mounted there.`;
    report(context, {
      ruleId: 'broker-call-without-projected-token',
      offset,
      message,
      fix: `Mount a projected serviceAccountToken volume (audience ${context.settings.audience}) and send that file instead.`,
      template: template.name,
      plan: tokenPathPlan(context, template, container, [located]),
    });
  }
}
