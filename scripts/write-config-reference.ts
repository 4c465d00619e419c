/**
 * Writes docs/configuration.md, the reference of every configuration key, from the zod schema in
 * src/server/config/schema.ts: one table row per key path with its type, default and description. Run with
 * `npm run docs:config`; a test fails when the committed file is out of date.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { brokerConfigSchema } from '../src/server/config/schema.js';
import { CONFIG_RELOAD } from '../src/server/config/config-reload.js';
import { ENVIRONMENT_VARIABLES } from '../src/server/config/environment.js';

/** Where the generated reference is committed. */
export const CONFIG_REFERENCE_PATH = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

/** The command that regenerates it, as the test's failure message and the file's header name it. */
export const CONFIG_REFERENCE_COMMAND = 'npm run docs:config';

type JsonSchema = { readonly [key: string]: unknown };

/** One key of the configuration file. */
export interface ConfigReferenceRow {
  /** Dotted path; `[]` stands for every element of a list: `issuers[].audiences`. */
  readonly path: string;
  readonly type: string;
  /** The default as written in YAML, "required", or "optional" (absent means off or derived; see description). */
  readonly default: string;
  readonly description: string;
}

function isSchema(value: unknown): value is JsonSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function numberOf(schema: JsonSchema, key: string): number | undefined {
  const value = schema[key];
  return typeof value === 'number' ? value : undefined;
}

function range(schema: JsonSchema): string {
  const min = numberOf(schema, 'minimum');
  const max = numberOf(schema, 'maximum');
  if (min !== undefined && max !== undefined) return ` ${min}–${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}

function lengths(schema: JsonSchema): string {
  const min = numberOf(schema, 'minLength');
  const max = numberOf(schema, 'maxLength');
  // A minimum of 1 only says "not empty", which every key of this file means; it is not worth a word.
  if (max !== undefined) return ` (at most ${max} characters)`;
  if (min !== undefined && min > 1) return ` (at least ${min} characters)`;
  return '';
}

/** A short, exact type: "integer 1–65535", "one of `jwks`, `tokenreview`", "list (at least 1) of strings". */
function typeOf(schema: JsonSchema): string {
  const values = schema.enum;
  if (Array.isArray(values)) return `one of ${values.map((value) => `\`${String(value)}\``).join(', ')}`;
  switch (schema.type) {
    case 'string': {
      if (schema.format === 'uri') return 'URL';
      const pattern = typeof schema.pattern === 'string' ? ` matching \`${schema.pattern}\`` : '';
      return `string${pattern}${lengths(schema)}`;
    }
    case 'integer':
    case 'number':
      return `${schema.type}${range(schema)}`;
    case 'boolean':
      return 'boolean';
    case 'array': {
      const min = numberOf(schema, 'minItems');
      const items = isSchema(schema.items) ? schema.items : {};
      const element = items.type === 'object' && isSchema(items.properties) ? 'objects' : typeOf(items).replace(/^(string|integer|number|boolean|URL)\b/, '$1s');
      return `list${min !== undefined && min > 0 ? ` (at least ${min})` : ''} of ${element}`;
    }
    case 'object': {
      if (isSchema(schema.properties)) return 'object';
      const keys = isSchema(schema.propertyNames) ? typeOf(schema.propertyNames) : 'string';
      const values = isSchema(schema.additionalProperties) ? typeOf(schema.additionalProperties) : 'any';
      return `map from ${keys} to ${values}`;
    }
    default:
      throw new Error(`no rendering for JSON Schema type ${JSON.stringify(schema.type)}`);
  }
}

/** A default as an operator would write it in the YAML file. */
function defaultOf(schema: JsonSchema, required: boolean): string {
  if (schema.type === 'object' && isSchema(schema.properties)) return required ? 'required' : 'optional';
  if (!('default' in schema)) return required ? 'required' : 'optional';
  const value = schema.default;
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

function rowsOf(schema: JsonSchema, path: string, required: boolean, out: ConfigReferenceRow[]): void {
  out.push({ path, type: typeOf(schema), default: defaultOf(schema, required), description: typeof schema.description === 'string' ? schema.description : '' });
  const objectSchema = schema.type === 'array' && isSchema(schema.items) ? schema.items : schema;
  const prefix = schema.type === 'array' ? `${path}[]` : path;
  if (objectSchema.type !== 'object' || !isSchema(objectSchema.properties)) return;
  const requiredKeys = Array.isArray(objectSchema.required) ? objectSchema.required : [];
  for (const [key, child] of Object.entries(objectSchema.properties)) {
    if (isSchema(child)) rowsOf(child, `${prefix}.${key}`, requiredKeys.includes(key), out);
  }
}

/** The JSON Schema of what an operator writes (`io: 'input'`: keys with defaults are optional). */
function inputSchema(): JsonSchema {
  return z.toJSONSchema(brokerConfigSchema, { io: 'input' }) as JsonSchema;
}

/** Every key path of the configuration, in schema order, grouped under its top-level key. */
export function configReferenceSections(): { readonly key: string; readonly description: string; readonly rows: readonly ConfigReferenceRow[] }[] {
  const root = inputSchema();
  const properties = isSchema(root.properties) ? root.properties : {};
  const required = Array.isArray(root.required) ? root.required : [];
  return Object.entries(properties).flatMap(([key, child]) => {
    if (!isSchema(child)) return [];
    const rows: ConfigReferenceRow[] = [];
    rowsOf(child, key, required.includes(key), rows);
    return [{ key, description: rows[0]?.description ?? '', rows }];
  });
}

/** Text for one table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

/** What a reload may do to a top-level block, from the one table that decides it (src/server/config/config-reload.ts). */
export function reloadLine(key: string): string {
  const rule = (CONFIG_RELOAD as Record<string, { live: boolean; why?: string; restartFields?: readonly string[] }>)[key];
  if (rule === undefined) throw new Error(`${key} is not classified in CONFIG_RELOAD`);
  if (!rule.live) return `**Reload:** needs a restart: ${rule.why ?? ''}.`;
  const except = rule.restartFields ?? [];
  if (except.length === 0) return '**Reload:** live: a change takes effect on SIGHUP or when the file changes, without a restart.';
  return `**Reload:** live, except ${except.map((field) => `\`${key}.${field}\``).join(' and ')}, which need a restart: ${rule.why ?? ''}.`;
}

/** The whole reference as Markdown, with a trailing newline. Deterministic: a function of the schema only. */
export function configReferenceText(): string {
  const lines = [
    '# Configuration reference',
    '',
    `<!-- Generated from src/server/config/schema.ts by scripts/write-config-reference.ts. Do not edit: run \`${CONFIG_REFERENCE_COMMAND}\`. -->`,
    '',
    'Every key of the broker\'s configuration file, generated from the schema the broker validates it against',
    '(`src/server/config/schema.ts`, also published as [config/broker.schema.json](../config/broker.schema.json)).',
    '[config/broker.example.yaml](../config/broker.example.yaml) is a commented example; `token-broker check-config FILE`',
    'validates a file exactly as `serve` does.',
    '',
    '- **key**: the path in the YAML file; `[]` means every element of a list (`issuers[].audiences`).',
    '- **default**: the value used when the key is omitted; **required**: the key must be given; **optional**: omitting',
    '  it turns the feature off or derives the value as the description says. An object\'s keys are filled with their',
    '  defaults when the object itself is omitted.',
    '- Unknown keys are refused everywhere. Rules that involve several keys (an issuer a rule names must exist,',
    '  lifetimes within `tokens.maxTtlSeconds`, plain `http://` only on loopback, ...) are checked at start-up too and',
    '  reported with the path of the offending key; they are not repeated here.',
    '- Environment overrides: `PORT` replaces `server.port`, `REDIS_URL` `cache.redis.url`, `KUBECONFIG` an omitted',
    '  `kubernetes.kubeconfig`; every variable the broker reads is listed under [Environment variables](#environment-variables).',
    '- **Reload** (each section says which): `serve` reloads the file on SIGHUP and when it changes (a ConfigMap',
    '  update included). A reload is validated as at start-up and put in force whole; if it changes a field that needs a',
    '  restart it is refused whole, logged with the fields it names, and the configuration in force stays',
    '  ([runbook](runbook.md#tokenbrokerconfigreloadfailing)).',
  ];
  for (const section of configReferenceSections()) {
    lines.push('', `## \`${section.key}\``, '');
    if (section.description !== '') lines.push(section.description, '');
    lines.push(reloadLine(section.key), '');
    lines.push('| key | type | default | description |', '|---|---|---|---|');
    for (const row of section.rows) lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${cell(row.default)} | ${row.description === '' ? '—' : cell(row.description)} |`);
  }
  lines.push(
    '',
    '## Environment variables',
    '',
    'Every variable the broker reads (`token-broker help` prints the same list). Tracing (OpenTelemetry) is configured',
    'only here, not in the file: the `OTEL_*` variables below decide whether `serve` traces, and the SDK reads the other',
    'standard ones itself (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, ...);',
    'see [runbook.md](runbook.md#find-an-exchanges-trace).',
    '',
    ...ENVIRONMENT_VARIABLES.map((variable) => `- \`${variable.name}\` (read by ${variable.readBy}): ${variable.description}.`),
  );
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  await writeFile(CONFIG_REFERENCE_PATH, configReferenceText(), 'utf8');
  console.log(`wrote ${CONFIG_REFERENCE_PATH}`);
}

// Only write when run as a script; the test imports configReferenceText() to compare.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
