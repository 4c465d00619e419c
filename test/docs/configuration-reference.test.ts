import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { brokerConfigSchema } from '../../src/server/config/schema.js';
import { ENVIRONMENT_VARIABLES } from '../../src/server/config/environment.js';
import { CONFIG_REFERENCE_COMMAND, CONFIG_REFERENCE_PATH, configReferenceSections, configReferenceText } from '../../scripts/write-config-reference.js';

/*
 * docs/configuration.md is generated from src/server/config/schema.ts. The committed file must be what the generator
 * writes today, so a schema change without `npm run docs:config` fails here instead of shipping a stale reference.
 */

type JsonSchema = { readonly [key: string]: unknown };

const isSchema = (value: unknown): value is JsonSchema => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Every key path of the input JSON Schema, walked independently of the generator. */
function keyPaths(schema: JsonSchema, path: string, out: string[]): string[] {
  if (path !== '') out.push(path);
  const object = schema.type === 'array' && isSchema(schema.items) ? schema.items : schema;
  const prefix = schema.type === 'array' ? `${path}[]` : path;
  if (isSchema(object.properties)) {
    for (const [key, child] of Object.entries(object.properties)) if (isSchema(child)) keyPaths(child, prefix === '' ? key : `${prefix}.${key}`, out);
  }
  return out;
}

describe('docs/configuration.md', () => {
  it('is up to date with src/server/config/schema.ts', () => {
    const committed = readFileSync(CONFIG_REFERENCE_PATH, 'utf8');
    assert.ok(committed === configReferenceText(), `docs/configuration.md is out of date with src/server/config/schema.ts: run \`${CONFIG_REFERENCE_COMMAND}\` and commit the result`);
  });

  it('lists every environment variable the broker reads, the OTEL_* ones of tracing included', () => {
    const committed = readFileSync(CONFIG_REFERENCE_PATH, 'utf8');
    const listed = [...committed.matchAll(/^- `([A-Z_]+)` \(read by /gm)].map((m) => m[1]);
    assert.deepEqual(listed, ENVIRONMENT_VARIABLES.map((variable) => variable.name));
    assert.ok(listed.includes('OTEL_EXPORTER_OTLP_ENDPOINT') && listed.includes('OTEL_SDK_DISABLED'));
  });

  it('has one row per key path of the configuration, in schema order', () => {
    const expected = keyPaths(z.toJSONSchema(brokerConfigSchema, { io: 'input' }) as JsonSchema, '', []);
    const rows = configReferenceSections().flatMap((section) => section.rows.map((row) => row.path));
    assert.deepEqual(rows, expected);
    const committedRows = [...readFileSync(CONFIG_REFERENCE_PATH, 'utf8').matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(committedRows, expected);
  });

  it('gives every key a type and a default (a value, "required" or "optional")', () => {
    for (const row of configReferenceSections().flatMap((section) => section.rows)) {
      assert.notEqual(row.type, '', row.path);
      assert.match(row.default, /^(required|optional|`.+`)$/, row.path);
    }
  });

  it('renders the facts an operator looks up exactly', () => {
    const rows = new Map(configReferenceSections().flatMap((section) => section.rows.map((row) => [row.path, row])));
    assert.deepEqual(rows.get('server.port'), {
      path: 'server.port',
      type: 'integer 1–65535',
      default: '`8080`',
      description: 'TCP port to listen on. The PORT environment variable overrides it.',
    });
    assert.deepEqual(
      [rows.get('server.publicUrl')?.type, rows.get('server.publicUrl')?.default],
      ['URL', 'required'],
    );
    assert.deepEqual(
      [rows.get('issuers[].audiences')?.type, rows.get('issuers[].audiences')?.default],
      ['list (at least 1) of strings', 'required'],
    );
    assert.deepEqual(
      [rows.get('issuers[].kubernetes.podBinding')?.type, rows.get('issuers[].kubernetes.podBinding')?.default],
      ['one of `enforce`, `off`', '`enforce`'],
    );
    assert.deepEqual([rows.get('cache.redis.keyPrefix')?.type, rows.get('cache.redis.keyPrefix')?.default], ['string (at most 64 characters)', '`tb:`']);
    assert.deepEqual([rows.get('tokens.allowedAudiences')?.default, rows.get('kubernetes')?.default], ['optional', 'optional']);
  });

  it('the package script regenerates it', () => {
    const scripts = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.equal(scripts['docs:config'], 'tsx scripts/write-config-reference.ts');
  });
});
