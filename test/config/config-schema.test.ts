import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { configSchemaText, CONFIG_SCHEMA_PATH } from '../../scripts/write-config-schema.js';
import { loadConfigFile } from '../../src/server/config/load-config.js';
import type { ValidateFunction } from 'ajv';

const EXAMPLE_PATH = fileURLToPath(new URL('../../config/broker.example.yaml', import.meta.url));

/** Keys of the schema the example shows only in a comment: a static jwksFile excludes discovery settings. */
// Keys that exclude others (a static JWKS file vs discovery; one Redis topology) are shown commented out.
const COMMENTED_IN_EXAMPLE = new Set([
  'issuers[].jwksFile',
  'issuers[].jwksOrigins',
  'cache.redis.sentinels',
  'cache.redis.sentinels[].host',
  'cache.redis.sentinels[].port',
  'cache.redis.cluster',
  'cache.redis.cluster[].host',
  'cache.redis.cluster[].port',
  'kubernetes.kubeconfig',
  'kubernetes.apiServer',
  'issuers[].kubernetes.apiServer',
  'tyk',
  'tyk.gatewayUrl',
  'tyk.secretFile',
  'tyk.orgId',
  'tyk.timeoutMs',
  'denies.static[].id',
  'denies.static[].issuer',
  'denies.static[].namespace',
  'denies.static[].serviceAccount',
  'denies.static[].workflow',
  'denies.static[].jti',
  'denies.static[].until',
  'denies.static[].reason',
  'admin',
  'admin.port',
  'admin.host',
  'admin.bearerTokenFile',
  'admin.tls',
  'admin.tls.certFile',
  'admin.tls.keyFile',
  'admin.tls.clientCaFile',
  'admin.tls.minVersion',
]);

interface SchemaNode {
  readonly type?: string;
  readonly properties?: Record<string, SchemaNode>;
  readonly items?: SchemaNode;
}

/** Every property path the schema declares, with `[]` for array items: `issuers[].caFile`. */
function schemaPaths(node: SchemaNode, prefix = ''): string[] {
  const paths: string[] = [];
  if (node.properties) {
    for (const [key, child] of Object.entries(node.properties)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      paths.push(path, ...schemaPaths(child, path));
    }
  }
  if (node.items) paths.push(...schemaPaths(node.items, `${prefix}[]`));
  return paths;
}

/** Every property path a document sets, with array items merged the same way. */
function documentPaths(value: unknown, prefix = ''): Set<string> {
  const paths = new Set<string>();
  if (Array.isArray(value)) {
    for (const item of value) for (const p of documentPaths(item, `${prefix}[]`)) paths.add(p);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      paths.add(path);
      for (const p of documentPaths(child, path)) paths.add(p);
    }
  }
  return paths;
}

describe('config/broker.schema.json', () => {
  let committed: string;
  let validate: ValidateFunction;
  before(async () => {
    committed = await readFile(CONFIG_SCHEMA_PATH, 'utf8');
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    // Ajv ships no formats; zod emits `format: uri` for URL fields. WHATWG parsing is what the broker applies too.
    ajv.addFormat('uri', (text: string) => URL.canParse(text));
    validate = ajv.compile(JSON.parse(committed) as object);
  });

  it('is the schema generated from src/server/config/schema.ts', () => {
    assert.ok(
      committed === configSchemaText(),
      'config/broker.schema.json is out of date with src/server/config/schema.ts: run `npm run schema` and commit the result',
    );
  });

  it('is a draft 2020-12 schema that refuses unknown keys at the root', () => {
    const schema = JSON.parse(committed) as Record<string, unknown>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.additionalProperties, false);
    assert.ok(committed.endsWith('}\n'), 'ends with a newline');
  });

  it('refuses a document with an unknown nested key and a wrong type', () => {
    const document = {
      server: { publicUrl: 'https://broker.example', listen: 1 },
      issuers: [{ name: 'a', issuer: 'https://issuer.example', audiences: 'x' }],
      rules: [{ name: 'r', policies: ['p'] }],
    };
    assert.equal(validate(document), false);
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.keyword}`).sort();
    assert.deepEqual(errors, ['/issuers/0/audiences type', '/server additionalProperties']);
  });
});

describe('config/broker.example.yaml', () => {
  let text: string;
  let document: unknown;
  before(async () => {
    text = await readFile(EXAMPLE_PATH, 'utf8');
    document = parse(text);
  });

  it('validates against the published JSON Schema', async () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    ajv.addFormat('uri', (value: string) => URL.canParse(value));
    const validate = ajv.compile(JSON.parse(await readFile(CONFIG_SCHEMA_PATH, 'utf8')) as object);
    assert.equal(validate(document), true, JSON.stringify(validate.errors, null, 2));
  });

  it('loads through loadConfigFile, as `serve` and `check-config` read it', async () => {
    const config = await loadConfigFile(EXAMPLE_PATH, {});
    assert.deepEqual(
      config.issuers.map((i) => i.name),
      ['in-cluster', 'eks-prod'],
    );
    assert.ok(config.rules.length >= 3);
    assert.equal(config.signing.algorithm, 'ES256');
  });

  it('shows every key of the schema', () => {
    const shown = documentPaths(document);
    const missing = schemaPaths(JSON.parse(configSchemaText()) as SchemaNode).filter((p) => !shown.has(p) && !COMMENTED_IN_EXAMPLE.has(p));
    assert.deepEqual(missing, [], 'keys of the schema not shown in the example');
  });

  it('shows the commented-out keys in a comment', () => {
    for (const path of COMMENTED_IN_EXAMPLE) {
      const key = path.split('.').pop() ?? path;
      assert.match(text, new RegExp(`^\\s*#(\\s+-)?\\s*${key}:(\\s|$)`, 'm'), `${key} appears commented out`);
    }
  });

  it('points editors at the schema', () => {
    assert.match(text, /^# yaml-language-server: \$schema=\.\/broker\.schema\.json$/m);
  });
});
