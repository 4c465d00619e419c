/**
 * Writes config/broker.schema.json from the zod schema in src/server/config/schema.ts, so editors and CI can check
 * a configuration file before the broker ever reads it. Run with `npm run schema`; a test fails when the
 * committed file is out of date.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { brokerConfigSchema } from '../src/server/config/schema.js';

/** Where the generated schema is committed. */
export const CONFIG_SCHEMA_PATH = fileURLToPath(new URL('../config/broker.schema.json', import.meta.url));

/**
 * The JSON Schema of the configuration file as text: what an operator writes (`io: 'input'`, so keys with
 * defaults are optional), pretty-printed with a trailing newline. Cross-field rules (issuer references,
 * lifetimes, plain http) are not expressible here; `token-broker check-config` applies them.
 */
export function configSchemaText(): string {
  const generated = z.toJSONSchema(brokerConfigSchema, { io: 'input', target: 'draft-2020-12' });
  // No $id: the project has no published URL yet, and an invented one would mislead editors that fetch it.
  const { $schema, ...body } = generated;
  const document = { $schema, title: 'workload-token-broker configuration', ...body };
  return `${JSON.stringify(document, null, 2)}\n`;
}

async function main(): Promise<void> {
  await writeFile(CONFIG_SCHEMA_PATH, configSchemaText(), 'utf8');
  console.log(`wrote ${CONFIG_SCHEMA_PATH}`);
}

// Only write when run as a script; tests import configSchemaText() to compare.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
