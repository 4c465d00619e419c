import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

/**
 * Tyk's published JSON Schemas (test/schemas, see NOTICE) as Ajv validators. The files are draft-04, which
 * Ajv 8 does not read, so they are adapted in memory: the draft-04 `id` keyword and `$schema` are dropped
 * (the classic schema reuses one `id` for two properties, which a draft-07 `$id` would refuse) and boolean
 * `exclusiveMinimum`/`exclusiveMaximum` become their draft-07 numeric form. Nothing else changes.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SCHEMAS_DIR = new URL('../schemas/', import.meta.url);

function readSchema(file: string): JsonObject {
  return JSON.parse(readFileSync(new URL(file, SCHEMAS_DIR), 'utf8')) as JsonObject;
}

function isObject(value: Json | undefined): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A draft-04 schema rewritten as draft-07 (a fresh copy). */
export function draft04ToDraft07(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(draft04ToDraft07);
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    // Keywords have scalar values; a property *named* `id` or `exclusiveMinimum` holds a schema object.
    if (key === '$schema' && typeof value === 'string') continue;
    if (key === 'id' && typeof value === 'string') continue;
    if ((key === 'exclusiveMinimum' || key === 'exclusiveMaximum') && typeof value === 'boolean') continue;
    out[key] = draft04ToDraft07(value);
  }
  for (const [exclusive, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    const limit = schema[bound];
    if (schema[exclusive] === true && typeof limit === 'number') {
      out[exclusive] = limit;
      delete out[bound];
    }
  }
  return out;
}

/**
 * The strict variant Tyk generates for development (apidef/oas/schema/build.sh): `additionalProperties:
 * false` on the root and every definition except X-Tyk-EventHandlers. The published schema allows unknown
 * fields so that a downgrade still validates, which would also let a misspelled field pass silently.
 */
export function strictXTykApiGateway(schema: JsonObject): JsonObject {
  const definitions = isObject(schema.definitions) ? schema.definitions : {};
  const strict: JsonObject = {};
  for (const [name, definition] of Object.entries(definitions)) {
    strict[name] = isObject(definition) ? { ...definition, additionalProperties: name === 'X-Tyk-EventHandlers' } : definition;
  }
  return { ...schema, additionalProperties: false, definitions: strict };
}

/**
 * What Tyk validates an OAS API definition against (apidef/oas/validator.go, loadOASSchema): the OpenAPI
 * 3.0 schema with the extension schema as its `x-tyk-api-gateway` property and the extension's definitions
 * merged into its own.
 */
export function tykOasSchema(oas30: JsonObject, xTyk: JsonObject): JsonObject {
  const { definitions: xTykDefinitions, ...xTykRoot } = xTyk;
  const properties = isObject(oas30.properties) ? oas30.properties : {};
  const definitions = isObject(oas30.definitions) ? oas30.definitions : {};
  return {
    ...oas30,
    properties: { ...properties, 'x-tyk-api-gateway': xTykRoot },
    definitions: { ...definitions, ...(isObject(xTykDefinitions) ? xTykDefinitions : {}) },
  };
}

/** Ajv for Tyk's schemas, with the formats they name (Ajv ships none). */
function createAjv(): Ajv {
  // strict: false because Ajv's strict mode refuses idioms of these third-party schemas: `required` without
  // `type: object` in `not`/`anyOf` branches, required properties defined only in a sibling, and tuple-form
  // `items` (X-Tyk-Scopes.scopeToPolicyMapping). Validation itself is unaffected.
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat('uri', (value: string) => URL.canParse(value));
  ajv.addFormat('uri-reference', (value: string) => URL.canParse(value, 'http://relative.invalid/'));
  ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isSafeInteger(value) });
  ajv.addFormat('double', { type: 'number', validate: (value: number) => Number.isFinite(value) });
  ajv.addFormat('date-time', (value: string) => !Number.isNaN(Date.parse(value)));
  ajv.addFormat('email', (value: string) => /^[^\s@]+@[^\s@]+$/.test(value));
  ajv.addFormat('regex', (value: string) => {
    try {
      new RegExp(value);
      return true;
    } catch {
      return false;
    }
  });
  return ajv;
}

function compile(schema: JsonObject): ValidateFunction {
  return createAjv().compile(draft04ToDraft07(schema) as JsonObject);
}

const xTyk = readSchema('tyk-x-tyk-api-gateway.json');
const oas30 = readSchema('tyk-oas-3.0.json');

/** A validator for one definition of the strict extension schema, such as X-Tyk-JWT. */
function strictDefinition(name: string): ValidateFunction {
  return compile({ definitions: strictXTykApiGateway(xTyk).definitions ?? {}, allOf: [{ $ref: `#/definitions/${name}` }] });
}

/** Validators, compiled once per test file that imports this module. */
export const validators = {
  /** A whole Tyk OAS API definition, as the gateway validates it. */
  oasDocument: compile(tykOasSchema(oas30, xTyk)),
  /** A whole Tyk OAS API definition, with the extension in Tyk's strict development form. */
  oasDocumentStrict: compile(tykOasSchema(oas30, strictXTykApiGateway(xTyk))),
  /** The `x-tyk-api-gateway` object alone. */
  xTykApiGateway: compile(xTyk),
  xTykApiGatewayStrict: compile(strictXTykApiGateway(xTyk)),
  /**
   * One scope-to-policy entry, strictly. The schema gives `scopeToPolicyMapping.items` in tuple form, so
   * it only constrains the first entry; each entry is checked with this as well.
   */
  scopeToPolicyStrict: strictDefinition('X-Tyk-ScopeToPolicy'),
  /**
   * The JWT security scheme, strictly, on its own: the extension lists security schemes as an anyOf of
   * every scheme type, so the document-level check alone cannot tell which one matched.
   */
  jwtSchemeStrict: strictDefinition('X-Tyk-JWT'),
  /** A classic API definition. */
  classic: compile(readSchema('tyk-apidef-classic.json')),
  /** A security policy file: the fields of Tyk's user.Policy, AccessDefinition and AccessSpec (test/schemas/NOTICE). */
  policy: compile(readSchema('tyk-policy.json')),
};

/** Ajv's errors as one readable line each, for assertion messages. */
export function errorsOf(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');
}
