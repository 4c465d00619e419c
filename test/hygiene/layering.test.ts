import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * The boundaries docs/architecture.md draws, read from the import statements themselves: the server (src/server)
 * never imports the product's tools (src/tools), and POST /token reads downwards, each file of its spine importing
 * none of the files before it. A change that breaks either fails here with the offending import.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The files of POST /token, socket to response, in the order a reader follows them (docs/architecture.md). */
const TOKEN_SPINE = [
  'src/server/http/serve-http.ts',
  'src/server/http/create-app.ts',
  'src/server/http/token-route.ts',
  'src/server/exchange/exchange-token.ts',
  'src/server/exchange/resolve-workload.ts',
  'src/server/rules/decide-grant.ts',
  'src/server/mint/jwt-minter.ts',
  'src/server/observability/exchange-record.ts',
];

interface Import {
  readonly target: string;
  /** `import type`: erased at run time, so it orders nothing. */
  readonly typeOnly: boolean;
}

function sourceFiles(): string[] {
  return readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join('src', file));
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  // `import x from '...'`, `export ... from '...'` (across lines), and the bare `import '...'` of a side effect.
  return [...text.matchAll(/^(?:import|export)(\s+type)?(?:[^'";]*?from)?\s*'(\.{1,2}\/[^']+)'/gm)].map((match) => ({
    target: normalize(join(dirname(file), (match[2] ?? '').replace(/\.js$/, '.ts'))),
    typeOnly: match[1] !== undefined,
  }));
}

const files = sourceFiles();
const graph = new Map(files.map((file) => [file, importsOf(file)]));

/** Every file `file` loads at run time, directly or not. */
function reachable(file: string): Set<string> {
  const seen = new Set<string>();
  const pending = [file];
  while (pending.length > 0) {
    const next = pending.pop() as string;
    for (const { target, typeOnly } of graph.get(next) ?? []) {
      if (typeOnly || seen.has(target)) continue;
      seen.add(target);
      pending.push(target);
    }
  }
  return seen;
}

describe('layering: what may import what', () => {
  it('every relative import names a file that exists (the check reads real edges)', () => {
    const missing = [...graph].flatMap(([file, imports]) => imports.filter(({ target }) => !graph.has(target)).map(({ target }) => `${file} -> ${target}`));
    assert.deepEqual(missing, []);
    assert.ok(files.length > 100 && [...graph.values()].flat().length > 300, 'the source tree was read');
  });

  it('src/server never imports src/tools, not even a type', () => {
    const upward = files
      .filter((file) => file.startsWith('src/server/'))
      .flatMap((file) => (graph.get(file) ?? []).filter(({ target }) => target.startsWith('src/tools/')).map(({ target }) => `${file} -> ${target}`));
    assert.deepEqual(upward, []);
  });

  it('only the tools load the assembled broker (src/server/broker.ts); no server module reaches back to it', () => {
    const loaders = files.filter((file) => file !== 'src/server/broker.ts' && reachable(file).has('src/server/broker.ts'));
    assert.ok(loaders.length > 0);
    assert.deepEqual(loaders.filter((file) => !file.startsWith('src/tools/') && file !== 'src/main.ts'), []);
  });

  it('src/main.ts is the entry point only: it imports the CLI and nothing else', () => {
    assert.deepEqual(graph.get('src/main.ts')?.map(({ target }) => target), ['src/tools/cli/run-cli.ts']);
  });

  it(`POST /token reads downwards: none of its ${TOKEN_SPINE.length} spine files loads one before it`, () => {
    for (const file of TOKEN_SPINE) assert.ok(graph.has(file), `${file} exists`);
    const backwards = TOKEN_SPINE.flatMap((file, index) => {
      const below = reachable(file);
      return TOKEN_SPINE.slice(0, index)
        .filter((earlier) => below.has(earlier))
        .map((earlier) => `${relative('src/server', file)} loads ${relative('src/server', earlier)}`);
    });
    assert.deepEqual(backwards, []);
  });
});
