import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/**
 * examples/argo/ as data, for the tests that check the examples (test/examples) and run the exchanging step's
 * script verbatim (test/e2e). Everything is read from the YAML files themselves, so a change to an example is
 * what the tests check, never a copy of it.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/argo/', import.meta.url));
export const BROKER_EXAMPLE_CONFIG = fileURLToPath(new URL('../../config/broker.example.yaml', import.meta.url));

/** One YAML document of an example file. */
export interface ExampleDocument {
  readonly file: string;
  /** Position of the document in its file, from 0. */
  readonly index: number;
  readonly kind: string;
  readonly name: string;
  readonly doc: JsonObject;
}

export function isObject(value: Json | undefined): value is JsonObject {
  return value !== null && value !== undefined && typeof value === 'object' && !Array.isArray(value);
}

/** The object at `key`, or a failure naming where it was expected. */
export function objectAt(value: Json | undefined, key: string, where: string): JsonObject {
  const found = isObject(value) ? value[key] : undefined;
  if (!isObject(found)) throw new Error(`${where}.${key} is not an object`);
  return found;
}

/** The array at `key`, or a failure naming where it was expected. */
export function arrayAt(value: Json | undefined, key: string, where: string): Json[] {
  const found = isObject(value) ? value[key] : undefined;
  if (!Array.isArray(found)) throw new Error(`${where}.${key} is not an array`);
  return found;
}

/** The string at `key`, or a failure naming where it was expected. */
export function stringAt(value: Json | undefined, key: string, where: string): string {
  const found = isObject(value) ? value[key] : undefined;
  if (typeof found !== 'string') throw new Error(`${where}.${key} is not a string`);
  return found;
}

/** Every document of every *.yaml file in examples/argo, in file order; YAML errors fail loudly. */
export function loadArgoExamples(): ExampleDocument[] {
  const files = readdirSync(EXAMPLES_DIR)
    .filter((file) => file.endsWith('.yaml') || file.endsWith('.yml'))
    .sort();
  const documents: ExampleDocument[] = [];
  for (const file of files) {
    const parsed = parseAllDocuments(readFileSync(`${EXAMPLES_DIR}${file}`, 'utf8'), { prettyErrors: true });
    if (!Array.isArray(parsed)) throw new Error(`${file}: not a YAML stream`);
    parsed.forEach((document, index) => {
      if (document.errors.length > 0) throw new Error(`${file} document ${index}: ${document.errors.map((e) => e.message).join('; ')}`);
      const doc = document.toJS() as Json;
      if (!isObject(doc)) throw new Error(`${file} document ${index} is not a mapping`);
      const where = `${file}[${index}]`;
      documents.push({ file, index, kind: stringAt(doc, 'kind', where), name: stringAt(objectAt(doc, 'metadata', where), 'name', `${where}.metadata`), doc });
    });
  }
  return documents;
}

/** The templates of a Workflow or WorkflowTemplate (a CronWorkflow's are in spec.workflowSpec); none for other kinds. */
export function templatesOf(example: ExampleDocument): JsonObject[] {
  if (!['Workflow', 'WorkflowTemplate', 'CronWorkflow'].includes(example.kind)) return [];
  const where = `${example.file}[${example.index}]`;
  const spec = objectAt(example.doc, 'spec', where);
  const workflowSpec = example.kind === 'CronWorkflow' ? objectAt(spec, 'workflowSpec', `${where}.spec`) : spec;
  const templates = isObject(workflowSpec) && Array.isArray(workflowSpec.templates) ? workflowSpec.templates : [];
  return templates.filter(isObject);
}

/** A projected service-account token source of a template volume. */
export interface ProjectedToken {
  readonly volumeName: string;
  readonly audience: string | undefined;
  readonly expirationSeconds: number | undefined;
  readonly path: string;
}

/** Every `serviceAccountToken` source in a template's `volumes`. */
export function projectedTokensOf(template: JsonObject): ProjectedToken[] {
  const volumes = Array.isArray(template.volumes) ? template.volumes.filter(isObject) : [];
  return volumes.flatMap((volume) => {
    const projected = isObject(volume.projected) ? volume.projected : undefined;
    const sources = projected !== undefined && Array.isArray(projected.sources) ? projected.sources.filter(isObject) : [];
    return sources.flatMap((source) => {
      const token = isObject(source.serviceAccountToken) ? source.serviceAccountToken : undefined;
      if (token === undefined) return [];
      return [
        {
          volumeName: String(volume.name),
          audience: typeof token.audience === 'string' ? token.audience : undefined,
          expirationSeconds: typeof token.expirationSeconds === 'number' ? token.expirationSeconds : undefined,
          path: String(token.path),
        },
      ];
    });
  });
}

/** The exchanging step: the one script template whose pod mounts a projected token, with what the test needs. */
export interface ExchangeStep {
  readonly example: ExampleDocument;
  readonly template: JsonObject;
  readonly templateName: string;
  readonly token: ProjectedToken;
  /** The script container's mount of the token volume. */
  readonly mountPath: string;
  /** `script.source`, exactly as in the YAML. */
  readonly source: string;
  /** `script.env` as name -> value, in order (values may hold {{inputs.parameters.X}}). */
  readonly env: ReadonlyMap<string, string>;
  /** `inputs.parameters` as name -> default. */
  readonly inputDefaults: ReadonlyMap<string, string>;
  /** The output artifact paths by name. */
  readonly artifacts: ReadonlyMap<string, string>;
}

/** Finds the one script template that mounts a projected service-account token. */
export function exchangeStepOf(examples: readonly ExampleDocument[]): ExchangeStep {
  const found: ExchangeStep[] = [];
  for (const example of examples) {
    for (const template of templatesOf(example)) {
      const tokens = projectedTokensOf(template);
      const script = isObject(template.script) ? template.script : undefined;
      if (tokens.length === 0 || script === undefined) continue;
      const templateName = String(template.name);
      const where = `${example.file} template ${templateName}`;
      if (tokens.length !== 1) throw new Error(`${where}: expected one projected token, found ${tokens.length}`);
      const token = tokens[0] as ProjectedToken;
      const mounts = arrayAt(script, 'volumeMounts', `${where}.script`).filter(isObject);
      const mount = mounts.find((m) => m.name === token.volumeName);
      if (mount === undefined) throw new Error(`${where}: the script does not mount volume ${token.volumeName}`);
      const env = new Map<string, string>();
      for (const entry of arrayAt(script, 'env', `${where}.script`).filter(isObject)) env.set(stringAt(entry, 'name', `${where}.env`), stringAt(entry, 'value', `${where}.env`));
      const inputDefaults = new Map<string, string>();
      const inputs = isObject(template.inputs) && Array.isArray(template.inputs.parameters) ? template.inputs.parameters.filter(isObject) : [];
      for (const parameter of inputs) inputDefaults.set(String(parameter.name), String(parameter.default));
      const artifacts = new Map<string, string>();
      const outputs = isObject(template.outputs) && Array.isArray(template.outputs.artifacts) ? template.outputs.artifacts.filter(isObject) : [];
      for (const artifact of outputs) artifacts.set(String(artifact.name), String(artifact.path));
      found.push({
        example,
        template,
        templateName,
        token,
        mountPath: stringAt(mount, 'mountPath', `${where}.volumeMounts`),
        source: stringAt(script, 'source', `${where}.script`),
        env,
        inputDefaults,
        artifacts,
      });
    }
  }
  if (found.length !== 1) throw new Error(`expected exactly one script template with a projected token in examples/argo, found ${found.length}`);
  return found[0] as ExchangeStep;
}

/**
 * The body of a shell function defined as `name() {` at the start of a line and closed by a `}` alone at
 * the start of a line (the layout of the example scripts), or undefined when there is none.
 */
export function shellFunctionBody(source: string, name: string): string | undefined {
  const lines = source.split('\n');
  const start = lines.findIndex((line) => line === `${name}() {`);
  if (start < 0) return undefined;
  const end = lines.findIndex((line, i) => i > start && line === '}');
  if (end < 0) return undefined;
  return lines.slice(start + 1, end).join('\n');
}

/** The script with every function definition (as shellFunctionBody finds them) and comment line removed. */
export function shellTopLevel(source: string): string {
  const lines = source.split('\n');
  const kept: string[] = [];
  let inFunction = false;
  for (const line of lines) {
    if (!inFunction && /^[A-Za-z_][A-Za-z0-9_]*\(\) \{$/.test(line)) inFunction = true;
    else if (inFunction && line === '}') inFunction = false;
    else if (!inFunction && !/^\s*#/.test(line)) kept.push(line);
  }
  return kept.join('\n');
}

/** Replaces {{inputs.parameters.NAME}} in an env value with the given parameters; unknown names fail. */
export function renderParameters(value: string, parameters: ReadonlyMap<string, string>): string {
  return value.replace(/\{\{\s*inputs\.parameters\.([A-Za-z0-9_-]+)\s*\}\}/g, (_match, name: string) => {
    const parameter = parameters.get(name);
    if (parameter === undefined) throw new Error(`no value for inputs.parameters.${name}`);
    return parameter;
  });
}
