import { isMap, isScalar, isSeq, type Document, type Node, type Scalar, type YAMLMap } from 'yaml';

/**
 * A read-only view of the parts of an Argo object the lint rules look at, built from a parsed YAML document.
 * Every value keeps its YAML node and its path, so a finding points at the source (line and column come from the
 * node's range) and a suggested fix can edit exactly that node. Nothing here interprets the values: that is the
 * rules' job.
 */

export type YamlPath = readonly (string | number)[];

/** The Argo kinds the linter checks; every other kind is skipped silently. */
export const ARGO_KINDS = ['Workflow', 'WorkflowTemplate', 'ClusterWorkflowTemplate', 'CronWorkflow'] as const;
export type ArgoKind = (typeof ARGO_KINDS)[number];

/** A string scalar with where it sits. */
export interface ScalarView {
  readonly node: Scalar;
  readonly value: string;
  readonly path: YamlPath;
}

export interface EnvView {
  readonly name: string;
  readonly node: YAMLMap;
  /** Path of the env list, and this variable's index in it. */
  readonly listPath: YamlPath;
  readonly index: number;
  readonly value: ScalarView | undefined;
  readonly secretKeyRef: { readonly name: string | undefined; readonly key: string | undefined } | undefined;
}

export interface MountView {
  readonly name: string;
  readonly mountPath: string;
  readonly subPath: string | undefined;
  readonly node: YAMLMap;
}

export interface ProjectedTokenView {
  /** File name inside the volume (serviceAccountToken.path). */
  readonly file: string;
  /** The audience scalar; undefined when absent, which means the API server's own audience. */
  readonly audience: ScalarView | undefined;
  readonly node: YAMLMap;
  readonly path: YamlPath;
}

export interface VolumeView {
  readonly name: string;
  readonly node: YAMLMap;
  readonly path: YamlPath;
  /** serviceAccountToken sources of a projected volume. */
  readonly tokens: readonly ProjectedTokenView[];
  /** secret.secretName of a Secret volume. */
  readonly secretName: string | undefined;
}

export interface ContainerView {
  /** main: the container or script of the template; set: a containerSet container. */
  readonly role: 'main' | 'init' | 'sidecar' | 'set';
  readonly name: string;
  readonly node: YAMLMap;
  readonly path: YamlPath;
  readonly command: readonly ScalarView[];
  readonly args: readonly ScalarView[];
  /** script.source of a script template. */
  readonly source: ScalarView | undefined;
  readonly env: readonly EnvView[];
  /** Its own volumeMounts, plus the containerSet's shared ones. */
  readonly mounts: readonly MountView[];
}

export interface HeaderView {
  readonly name: string;
  readonly node: YAMLMap;
  readonly value: ScalarView | undefined;
  readonly secretKeyRef: { readonly name: string | undefined; readonly key: string | undefined } | undefined;
}

export interface HttpView {
  readonly node: YAMLMap;
  readonly url: ScalarView | undefined;
  readonly headers: readonly HeaderView[];
  readonly body: ScalarView | undefined;
}

export interface ParameterView {
  readonly name: string;
  /** Where it is declared, for messages: "workflow argument", "input", "step argument". */
  readonly role: string;
  readonly node: YAMLMap;
  /** Its value and default scalars (strings only). */
  readonly values: readonly ScalarView[];
}

/** Pod-level settings that decide which service-account token a step's pod gets. */
export interface PodTokenSettings {
  /** automountServiceAccountToken, with the node that set it (template wins over workflow). */
  readonly automount: { readonly value: boolean; readonly node: Node } | undefined;
  /** executor.serviceAccountName (template wins over workflow). */
  readonly executorServiceAccount: { readonly value: string; readonly node: Node } | undefined;
}

export interface TemplateView {
  readonly name: string;
  readonly node: YAMLMap;
  readonly path: YamlPath;
  readonly containers: readonly ContainerView[];
  readonly http: HttpView | undefined;
  readonly volumes: readonly VolumeView[];
  readonly parameters: readonly ParameterView[];
  readonly settings: PodTokenSettings;
  /** podSpecPatch: mounts added there are invisible to the rules, so they stay silent about mounts. */
  readonly podSpecPatch: ScalarView | undefined;
}

export interface WorkflowView {
  readonly kind: ArgoKind;
  readonly name: string | undefined;
  readonly specPath: YamlPath;
  readonly templates: readonly TemplateView[];
  /** spec.volumes and spec.templateDefaults.volumes: available to any template whose container mounts them. */
  readonly volumes: readonly VolumeView[];
  /** spec.arguments.parameters. */
  readonly parameters: readonly ParameterView[];
}

// --- node helpers ---------------------------------------------------------------------------------------------

function child(node: unknown, key: string): unknown {
  return isMap(node) ? node.get(key, true) : undefined;
}

function mapChild(node: unknown, key: string): YAMLMap | undefined {
  const value = child(node, key);
  return isMap(value) ? value : undefined;
}

function seqItems(node: unknown, key: string): unknown[] {
  const value = child(node, key);
  return isSeq(value) ? value.items : [];
}

function stringScalar(node: unknown, path: YamlPath): ScalarView | undefined {
  return isScalar(node) && typeof node.value === 'string' ? { node, value: node.value, path } : undefined;
}

function stringChild(node: unknown, key: string, path: YamlPath): ScalarView | undefined {
  return stringScalar(child(node, key), [...path, key]);
}

function plainString(node: unknown, key: string): string | undefined {
  const value = child(node, key);
  return isScalar(value) && typeof value.value === 'string' ? value.value : undefined;
}

function stringList(node: unknown, key: string, path: YamlPath): ScalarView[] {
  const views: ScalarView[] = [];
  seqItems(node, key).forEach((item, index) => {
    const view = stringScalar(item, [...path, key, index]);
    if (view !== undefined) views.push(view);
  });
  return views;
}

function secretKeyRefOf(valueFrom: unknown): { name: string | undefined; key: string | undefined } | undefined {
  const ref = mapChild(valueFrom, 'secretKeyRef');
  return ref === undefined ? undefined : { name: plainString(ref, 'name'), key: plainString(ref, 'key') };
}

// --- readers ----------------------------------------------------------------------------------------------------

function readEnv(container: YAMLMap, path: YamlPath): EnvView[] {
  const env: EnvView[] = [];
  const listPath = [...path, 'env'];
  seqItems(container, 'env').forEach((item, index) => {
    if (!isMap(item)) return;
    const name = plainString(item, 'name');
    if (name === undefined) return;
    env.push({
      name,
      node: item,
      listPath,
      index,
      value: stringChild(item, 'value', [...listPath, index]),
      secretKeyRef: secretKeyRefOf(child(item, 'valueFrom')),
    });
  });
  return env;
}

function readMounts(node: unknown): MountView[] {
  const mounts: MountView[] = [];
  for (const item of seqItems(node, 'volumeMounts')) {
    if (!isMap(item)) continue;
    const name = plainString(item, 'name');
    const mountPath = plainString(item, 'mountPath');
    if (name !== undefined && mountPath !== undefined) mounts.push({ name, mountPath, subPath: plainString(item, 'subPath'), node: item });
  }
  return mounts;
}

function readContainer(node: YAMLMap, path: YamlPath, role: ContainerView['role'], shared: readonly MountView[]): ContainerView {
  return {
    role,
    name: role === 'main' ? 'main' : (plainString(node, 'name') ?? role),
    node,
    path,
    command: stringList(node, 'command', path),
    args: stringList(node, 'args', path),
    source: stringChild(node, 'source', path),
    env: readEnv(node, path),
    mounts: [...readMounts(node), ...shared],
  };
}

/** The volumes of a `volumes` list. */
export function readVolumes(owner: unknown, path: YamlPath): VolumeView[] {
  const volumes: VolumeView[] = [];
  seqItems(owner, 'volumes').forEach((item, index) => {
    if (!isMap(item)) return;
    const name = plainString(item, 'name');
    if (name === undefined) return;
    const volumePath = [...path, 'volumes', index];
    const tokens: ProjectedTokenView[] = [];
    const projected = mapChild(item, 'projected');
    seqItems(projected, 'sources').forEach((source, sourceIndex) => {
      const token = mapChild(source, 'serviceAccountToken');
      if (token === undefined) return;
      const tokenPath = [...volumePath, 'projected', 'sources', sourceIndex, 'serviceAccountToken'];
      tokens.push({ file: plainString(token, 'path') ?? 'token', audience: stringChild(token, 'audience', tokenPath), node: token, path: tokenPath });
    });
    volumes.push({ name, node: item, path: volumePath, tokens, secretName: plainString(mapChild(item, 'secret'), 'secretName') });
  });
  return volumes;
}

function readParameters(owner: unknown, path: YamlPath, role: string): ParameterView[] {
  const parameters: ParameterView[] = [];
  seqItems(owner, 'parameters').forEach((item, index) => {
    if (!isMap(item)) return;
    const name = plainString(item, 'name');
    if (name === undefined) return;
    const itemPath = [...path, 'parameters', index];
    const values = ['value', 'default']
      .map((key) => stringChild(item, key, itemPath))
      .filter((view): view is ScalarView => view !== undefined);
    parameters.push({ name, role, node: item, values });
  });
  return parameters;
}

function readHttp(node: YAMLMap, path: YamlPath): HttpView {
  const headers: HeaderView[] = [];
  seqItems(node, 'headers').forEach((item, index) => {
    if (!isMap(item)) return;
    const name = plainString(item, 'name');
    if (name === undefined) return;
    const value = stringChild(item, 'value', [...path, 'headers', index]);
    headers.push({ name, node: item, value, secretKeyRef: secretKeyRefOf(child(item, 'valueFrom')) });
  });
  return { node, url: stringChild(node, 'url', path), headers, body: stringChild(node, 'body', path) };
}

function setting<T>(node: unknown, key: string, guard: (value: unknown) => value is T): { value: T; node: Node } | undefined {
  const value = child(node, key);
  return isScalar(value) && guard(value.value) ? { value: value.value, node: value } : undefined;
}

const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value !== '';

function readSettings(owner: unknown): PodTokenSettings {
  return {
    automount: setting(owner, 'automountServiceAccountToken', isBoolean),
    executorServiceAccount: setting(mapChild(owner, 'executor'), 'serviceAccountName', isNonEmptyString),
  };
}

/** Template settings override the workflow's, as Argo resolves them (template, then templateDefaults, then spec). */
function mergeSettings(template: PodTokenSettings, defaults: PodTokenSettings, workflow: PodTokenSettings): PodTokenSettings {
  return {
    automount: template.automount ?? defaults.automount ?? workflow.automount,
    executorServiceAccount: template.executorServiceAccount ?? defaults.executorServiceAccount ?? workflow.executorServiceAccount,
  };
}

interface WorkflowContext {
  readonly settings: PodTokenSettings;
  readonly defaults: PodTokenSettings;
  readonly podSpecPatch: ScalarView | undefined;
}

/** A template and the inline templates of its steps and DAG tasks, flattened. */
function readTemplates(node: YAMLMap, path: YamlPath, nameHint: string, context: WorkflowContext): TemplateView[] {
  const name = plainString(node, 'name') ?? nameHint;
  const containers: ContainerView[] = [];
  for (const key of ['container', 'script'] as const) {
    const container = mapChild(node, key);
    if (container !== undefined) containers.push(readContainer(container, [...path, key], 'main', []));
  }
  const containerSet = mapChild(node, 'containerSet');
  if (containerSet !== undefined) {
    const shared = readMounts(containerSet);
    seqItems(containerSet, 'containers').forEach((item, index) => {
      if (isMap(item)) containers.push(readContainer(item, [...path, 'containerSet', 'containers', index], 'set', shared));
    });
  }
  for (const [key, role] of [['initContainers', 'init'], ['sidecars', 'sidecar']] as const) {
    seqItems(node, key).forEach((item, index) => {
      if (isMap(item)) containers.push(readContainer(item, [...path, key, index], role, []));
    });
  }
  const http = mapChild(node, 'http');

  const parameters = readParameters(mapChild(node, 'inputs'), [...path, 'inputs'], 'input');
  const nested: TemplateView[] = [];
  const visitStep = (step: unknown, stepPath: YamlPath): void => {
    if (!isMap(step)) return;
    parameters.push(...readParameters(mapChild(step, 'arguments'), [...stepPath, 'arguments'], 'step argument'));
    const inline = mapChild(step, 'inline');
    if (inline !== undefined) nested.push(...readTemplates(inline, [...stepPath, 'inline'], plainString(step, 'name') ?? name, context));
  };
  seqItems(node, 'steps').forEach((group, groupIndex) => {
    if (isSeq(group)) group.items.forEach((step, stepIndex) => visitStep(step, [...path, 'steps', groupIndex, stepIndex]));
  });
  seqItems(mapChild(node, 'dag'), 'tasks').forEach((task, taskIndex) => visitStep(task, [...path, 'dag', 'tasks', taskIndex]));

  const template: TemplateView = {
    name,
    node,
    path,
    containers,
    http: http === undefined ? undefined : readHttp(http, [...path, 'http']),
    volumes: readVolumes(node, path),
    parameters,
    settings: mergeSettings(readSettings(node), context.defaults, context.settings),
    podSpecPatch: stringChild(node, 'podSpecPatch', path) ?? context.podSpecPatch,
  };
  return [template, ...nested];
}

/**
 * The Argo object of a document, or undefined when the document is not one of ARGO_KINDS (other kinds, other
 * API groups, non-mapping documents). A CronWorkflow's workflow is under spec.workflowSpec.
 */
export function readWorkflow(document: Document): WorkflowView | undefined {
  const root = document.contents;
  if (!isMap(root)) return undefined;
  const kind = plainString(root, 'kind');
  if (kind === undefined || !(ARGO_KINDS as readonly string[]).includes(kind)) return undefined;
  const apiVersion = plainString(root, 'apiVersion');
  if (apiVersion !== undefined && !apiVersion.startsWith('argoproj.io/')) return undefined;
  const argoKind = kind as ArgoKind;
  const specPath: YamlPath = argoKind === 'CronWorkflow' ? ['spec', 'workflowSpec'] : ['spec'];
  const spec = document.getIn(specPath, true);
  const name = plainString(mapChild(root, 'metadata'), 'name') ?? plainString(mapChild(root, 'metadata'), 'generateName');
  if (!isMap(spec)) return { kind: argoKind, name, specPath, templates: [], volumes: [], parameters: [] };

  const defaultsNode = mapChild(spec, 'templateDefaults');
  const context: WorkflowContext = {
    settings: readSettings(spec),
    defaults: readSettings(defaultsNode),
    podSpecPatch: stringChild(spec, 'podSpecPatch', specPath),
  };
  const templates: TemplateView[] = [];
  seqItems(spec, 'templates').forEach((item, index) => {
    if (isMap(item)) templates.push(...readTemplates(item, [...specPath, 'templates', index], `#${index}`, context));
  });
  return {
    kind: argoKind,
    name,
    specPath,
    templates,
    volumes: [...readVolumes(spec, specPath), ...readVolumes(defaultsNode, [...specPath, 'templateDefaults'])],
    parameters: readParameters(mapChild(spec, 'arguments'), [...specPath, 'arguments'], 'workflow argument'),
  };
}
