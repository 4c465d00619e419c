import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** Helpers shared by the deployment-file tests: reading YAML manifests and walking them with exact assertions. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The repository file as text. */
export function readText(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

/**
 * Every YAML document of a file (or of `text`), as plain data; a syntax error or a duplicate key fails the
 * test, and empty documents (a trailing `---`) are dropped.
 */
export function readYamlDocuments(path: string, text = readText(path)): JsonObject[] {
  const documents = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(documents)) assert.fail(`${path}: not a YAML stream`);
  const out: JsonObject[] = [];
  for (const [index, document] of documents.entries()) {
    assert.deepEqual(
      document.errors.map((e) => e.message),
      [],
      `${path}: YAML document ${index + 1} has errors`,
    );
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    assert.ok(isObject(value), `${path}: YAML document ${index + 1} is not a mapping`);
    out.push(value);
  }
  return out;
}

/** The single YAML document of a file. */
export function readYaml(path: string): JsonObject {
  const documents = readYamlDocuments(path);
  assert.equal(documents.length, 1, `${path}: expected exactly one YAML document`);
  return documents[0] as JsonObject;
}

/** The value at a dotted path (`spec.template.spec`); numeric segments index arrays. */
export function at(value: unknown, path: string): unknown {
  let current = value;
  for (const segment of path.split('.')) {
    if (Array.isArray(current) && /^\d+$/.test(segment)) current = current[Number(segment)];
    else if (isObject(current)) current = current[segment];
    else return undefined;
  }
  return current;
}

/** The object at a path, failing the test when it is not one. */
export function objectAt(value: unknown, path: string): JsonObject {
  const found = at(value, path);
  assert.ok(isObject(found), `${path} must be an object, got ${JSON.stringify(found)}`);
  return found;
}

/** The array at a path, failing the test when it is not one. */
export function arrayAt(value: unknown, path: string): unknown[] {
  const found = at(value, path);
  assert.ok(Array.isArray(found), `${path} must be an array, got ${JSON.stringify(found)}`);
  return found as unknown[];
}

/** The string at a path, failing the test when it is not one. */
export function stringAt(value: unknown, path: string): string {
  const found = at(value, path);
  assert.equal(typeof found, 'string', `${path} must be a string, got ${JSON.stringify(found)}`);
  return found as string;
}

/** The one element of `items` whose `name` is `name`. */
export function named(items: readonly unknown[], name: string): JsonObject {
  const found = items.filter((item) => isObject(item) && item.name === name);
  assert.equal(found.length, 1, `expected exactly one entry named "${name}"`);
  return found[0] as JsonObject;
}

/**
 * Whether a test needing the command-line tool `command` must be skipped: false when `command --version`-like
 * `probe` runs, or when CI=true (the test then runs and fails on the missing tool, so CI cannot pass without
 * it); otherwise the reason, which node:test reports.
 */
export function missingToolSkip(command: string, probe: readonly string[], install: string): string | false {
  const found = spawnSync(command, [...probe], { encoding: 'utf8', timeout: 30_000 });
  if (found.error === undefined && found.status === 0) return false;
  if (process.env.CI === 'true') return false;
  return `${command} is not on PATH (${install})`;
}
