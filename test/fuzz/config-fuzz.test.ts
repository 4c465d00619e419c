import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateConfig, formatPath, type ConfigValidation } from '../../src/server/config/validate-config.js';
import { ConfigError, parseConfigText } from '../../src/server/config/load-config.js';
import { defaultConfig } from '../support/broker-harness.js';
import { runCli } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';

/*
 * Property-based fuzzing of configuration loading: validateConfig never throws, whatever it is given, and answers
 * either a configuration or problems that each name a field path; parseConfigText turns any text into data or a
 * ConfigError with line-addressed problems, never another exception. Seeds fixed, runs bounded.
 */

const SEEDS = { anything: 0xc0f1_0001, mutations: 0xc0f1_0002, unknownKeys: 0xc0f1_0003, yaml: 0xc0f1_0004 } as const;
const LIMITS = { interruptAfterTimeLimit: 30_000, markInterruptAsFailure: true, endOnFailure: true } as const;

const BASE = defaultConfig('http://127.0.0.1:6443');

/** The answer has the promised shape: a config, or at least one problem, each with a non-empty path and message. */
function assertWellFormed(result: ConfigValidation): void {
  if (result.ok) {
    assert.equal(typeof result.config, 'object');
    assert.ok(Object.isFrozen(result.config));
    return;
  }
  assert.ok(result.problems.length > 0, 'a refusal names at least one problem');
  for (const problem of result.problems) {
    assert.equal(typeof problem.path, 'string');
    assert.ok(problem.path.length > 0, 'every problem has a path');
    assert.equal(typeof problem.message, 'string');
    assert.ok(problem.message.length > 0, `the problem at ${problem.path} says what is wrong`);
  }
}

/** Every path (array of keys) to a value inside a JSON-like document, the root included. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((item, i) => paths.push(...pathsOf(item, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...prefix, key]));
  return paths;
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function getAt(root: unknown, path: readonly (string | number)[]): unknown {
  let node = root;
  for (const key of path) node = (node as Record<string | number, unknown>)[key];
  return node;
}

function setAt(root: unknown, path: readonly (string | number)[], value: unknown, remove: boolean): unknown {
  if (path.length === 0) return value;
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown> | unknown[];
  const key = path[path.length - 1] as string | number;
  if (remove) {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
  } else {
    (parent as Record<string | number, unknown>)[key] = value;
  }
  return root;
}

const BASE_PATHS = pathsOf(BASE);

describe('fuzz: configuration loading', { timeout: 180_000 }, () => {
  it('the unmodified base configuration is valid (the mutations below start from it)', () => {
    assert.equal(validateConfig(BASE).ok, true);
  });

  it('validateConfig(anything) never throws and answers a config or problems with paths', () => {
    const anything = fc.anything({
      maxDepth: 4,
      withBoxedValues: true,
      withNullPrototype: true,
      withMap: true,
      withSet: true,
      withBigInt: true,
      withDate: true,
      withTypedArray: true,
      withSparseArray: true,
      withObjectString: true,
    });
    fc.assert(
      fc.property(anything, (input) => {
        assertWellFormed(validateConfig(input));
      }),
      { seed: SEEDS.anything, numRuns: 400, ...LIMITS },
    );
  });

  it('one random change (a value replaced or removed) anywhere in a valid configuration: never throws, answers a config or problems with paths', () => {
    const change = fc.record({
      path: fc.constantFrom(...BASE_PATHS),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', -1, 0, 1e308, '*', '{namespace}', 'http://example.com', '../../etc/passwd', null)),
      remove: fc.boolean(),
    });
    fc.assert(
      fc.property(change, ({ path, value, remove }) => {
        const input = setAt(clone(BASE), path, value, remove);
        const result = validateConfig(input);
        assertWellFormed(result);
      }),
      { seed: SEEDS.mutations, numRuns: 400, ...LIMITS },
    );
  });

  it('an unknown key added to any object of a valid configuration is refused at exactly its path', () => {
    const objectPaths = BASE_PATHS.filter((path) => {
      const node = getAt(BASE, path);
      return node !== null && typeof node === 'object' && !Array.isArray(node);
    });
    fc.assert(
      fc.property(fc.constantFrom(...objectPaths), fc.stringMatching(/^[a-z][a-zA-Z]{2,12}$/), (path, suffix) => {
        const key = `unknown${suffix}`;
        const input = clone(BASE);
        (getAt(input, path) as Record<string, unknown>)[key] = true;
        const result = validateConfig(input);
        assert.equal(result.ok, false);
        if (!result.ok) assert.deepEqual(result.problems, [{ path: formatPath([...path, key]), message: 'unknown key' }]);
      }),
      { seed: SEEDS.unknownKeys, numRuns: 200, ...LIMITS },
    );
  });

  it('parseConfigText(any YAML-ish text) returns data or throws a ConfigError with line-addressed problems, never anything else', () => {
    const scalar = fc.oneof(
      fc.constantFrom('1', 'true', 'null', '~', '0x1F', '1e999', '.nan', '"\\ud800"', "'x'", '!!binary aGk=', '!!set {a, b}', '!!timestamp 2001-12-14', '!custom x', '[', '{'),
      fc.string({ maxLength: 12 }),
    );
    const anchorName = fc.constantFrom('a', 'b', 'c');
    const line = fc.oneof(
      fc.tuple(fc.string({ maxLength: 10 }), scalar).map(([k, v]) => `${k}: ${v}`),
      fc.tuple(fc.string({ maxLength: 10 }), anchorName, scalar).map(([k, a, v]) => `${k}: &${a} ${v}`),
      fc.tuple(fc.string({ maxLength: 10 }), anchorName).map(([k, a]) => `${k}: *${a}`),
      fc.tuple(anchorName).map(([a]) => `<<: *${a}`),
      fc.constantFrom('---', '...', '%YAML 1.1', '- x', '  - y', '? a', ': b', '\t- tab', 'issuers:', '  - name: x', 'rules: [*a, *a]'),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
        const text = lines.join('\n');
        let document: unknown;
        try {
          document = parseConfigText(text, 'fuzz.yaml');
        } catch (error) {
          assert.ok(error instanceof ConfigError, `a ${error instanceof Error ? error.name : typeof error}: ${String(error)}`);
          assert.ok(error.problems.length > 0);
          for (const problem of error.problems) assert.match(problem.path, /^line (\d+|\?)$/);
          return;
        }
        assertWellFormed(validateConfig(document));
      }),
      { seed: SEEDS.yaml, numRuns: 400, ...LIMITS },
    );
  });

  it('regression: an alias to an anchor that was never set is a problem of the file at its line, not a crash', () => {
    assert.throws(
      () => parseConfigText('server:\n  port: 8080\nissuers: *missing\n', 'broker.yaml'),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [{ path: 'line 3', message: 'Unresolved alias (the anchor must be set before the alias): missing' }]);
        return true;
      },
    );
    assert.throws(
      () => parseConfigText(`a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [${'*a, '.repeat(20)}*a]\nc: &c [${'*b, '.repeat(20)}*b]\nd: [${'*c, '.repeat(20)}*c]\n`, 'bomb.yaml'),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [{ path: 'line 2', message: 'Excessive alias count indicates a resource exhaustion attack' }]);
        return true;
      },
    );
  });

  describe('token-broker check-config on such a file', () => {
    const scratch = useScratchDir('tb-config-fuzz-');

    it('exits 1 with the problem and its line (exit 2 is for usage errors)', async () => {
      const file = await scratch.write('broker.yaml', 'server:\n  port: 8080\nissuers: *missing\n');
      const { code, stderr } = await runCli(['check-config', file]);
      assert.equal(code, 1);
      assert.equal(stderr, `${file}: invalid configuration\n  line 3: Unresolved alias (the anchor must be set before the alias): missing\n`);
    });
  });
});
