import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, arrayAt, at, named, readText, readYaml } from './deploy-support.js';

/**
 * The Dockerfile cannot be built here (no Docker engine), so it is read as data: its instructions, stage by
 * stage, and the build context that .dockerignore leaves, checked against what the image must be: multi-stage,
 * production dependencies only, a pinned and still supported Node.js LTS slim base, a numeric non-root user, no
 * writes needed.
 */

/**
 * Node.js LTS lines and their end of life, from the Node.js release schedule (github.com/nodejs/Release). A line
 * pinned line past its end of life fails the test until the Dockerfile moves on.
 */
const LTS_END_OF_LIFE: ReadonlyMap<number, string> = new Map([
  [22, '2027-04-30'],
  [24, '2028-04-30'],
]);

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Dockerfile instructions with continuation lines joined and comments and parser directives dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (pending !== '' && line.startsWith('#')) continue;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const match = /^(\S+)\s*(.*)$/.exec(full);
    assert.ok(match?.[1] !== undefined, `line ${start}: ${full}`);
    out.push({ keyword: match[1].toUpperCase(), args: match[2] ?? '', line: start });
  }
  assert.equal(pending, '', 'the Dockerfile ends in a continuation line');
  return out;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

function stagesOf(instructions: readonly Instruction[]): Stage[] {
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      assert.ok(match?.[1] !== undefined, `FROM ${instruction.args}`);
      stages.push({ from: match[1], name: match[2], instructions: [] });
    } else {
      const current = stages.at(-1);
      assert.ok(current !== undefined, `${instruction.keyword} before the first FROM`);
      current.instructions.push(instruction);
    }
  }
  return stages;
}

const DOCKERFILE = readText('Dockerfile');
const instructions = parseDockerfile(DOCKERFILE);
const stages = stagesOf(instructions);
const build = stages.find((stage) => stage.name === 'build');
const runtime = stages.at(-1);

function from(): string {
  return stages[0]?.from ?? '';
}

function args(stage: Stage | undefined, keyword: string): string[] {
  return (stage?.instructions ?? []).filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** .dockerignore patterns (comments and blank lines dropped). */
const IGNORE = readText('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

/** Whether .dockerignore keeps a context path out, for the pattern shapes it uses (`name`, `dir/sub`, `*.ext`, `**\/*.ext`). */
function ignored(path: string): boolean {
  const segments = path.split('/');
  return IGNORE.some((pattern) => {
    assert.ok(!pattern.startsWith('!'), 'no exceptions, so the matcher below stays exact');
    const glob = (text: string) => new RegExp(`^${text.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    if (pattern.startsWith('**/')) return segments.some((_, i) => glob(pattern.slice(3)).test(segments.slice(i).join('/')));
    // A pattern matches a path or any of its parent directories.
    return segments.some((_, i) => glob(pattern).test(segments.slice(0, i + 1).join('/')));
  });
}

describe('Dockerfile', () => {
  it('has two stages, build and runtime, on the same pinned Node.js LTS slim image that is still supported', () => {
    assert.deepEqual(
      stages.map((stage) => stage.name),
      ['build', 'runtime'],
    );
    const froms = new Set(stages.map((stage) => stage.from));
    assert.equal(froms.size, 1, `both stages on one base, not ${[...froms].join(' and ')}`);
    const base = from();
    const match = /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim$/.exec(base);
    assert.ok(match !== null, `${base}: a full version tag, never latest or a floating major`);
    const major = Number(match[1]);
    const endOfLife = LTS_END_OF_LIFE.get(major);
    assert.ok(endOfLife !== undefined, `Node.js ${major} is not an LTS line (${[...LTS_END_OF_LIFE.keys()].join(', ')} are)`);
    assert.ok(Date.now() < Date.parse(endOfLife), `Node.js ${major} reached end of life on ${endOfLife}: pin a supported LTS`);
    // The suite also runs on the machine's Node; the image must satisfy the same engines range.
    const engines = (JSON.parse(readText('package.json')) as { engines: { node: string } }).engines.node;
    assert.equal(engines, '>=20.19');
    assert.ok(major > 20, 'the image satisfies package.json engines');
  });

  it('is the Node.js that .ci/run runs the suite on a second time, and that Node.js calls itself LTS', () => {
    const version = from().slice('node:'.length).split('-')[0] ?? '';
    const reported = execFileSync(join(ROOT, 'scripts/lts-node.sh'), ['--version'], { encoding: 'utf8' }).trim();
    assert.equal(reported, version, 'scripts/lts-node.sh reads the version from the FROM lines');
    const ci = readText('.ci/run');
    assert.match(ci, /^PATH="\$\(scripts\/lts-node\.sh\):\$PATH" npm test$/m, '.ci/run runs npm test on the image\'s Node.js');
    assert.ok(readText('docs/deployment.md').includes(`Both stages are \`node:${version}-bookworm-slim\``), 'docs/deployment.md names the base');
    assert.ok(readText('README.md').includes(`(${version}, the Dockerfile's \`FROM\``), 'README names the version the image runs');
    if (process.version === `v${version}`) {
      // Running under that second run: the binary itself says it is a long-term-support release.
      assert.equal(typeof process.release.lts, 'string');
    }
  });

  it('builds with every dependency and tsc in the build stage', () => {
    assert.deepEqual(args(build, 'RUN'), ['npm ci --ignore-scripts --no-audit --no-fund', 'npm run build && chmod 0755 dist/main.js']);
    assert.deepEqual(args(build, 'COPY'), ['package.json package-lock.json ./', 'tsconfig.json tsconfig.build.json ./', 'src ./src']);
    const scripts = (JSON.parse(readText('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.equal(scripts.build, 'tsc -p tsconfig.build.json');
  });

  it('the runtime stage has production dependencies and dist/ only, and never the sources', () => {
    assert.deepEqual(args(runtime, 'RUN'), [
      'npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force && ln -s /app/dist/main.js /usr/local/bin/token-broker',
    ]);
    assert.deepEqual(args(runtime, 'COPY'), ['package.json package-lock.json ./', '--from=build /app/dist ./dist']);
    assert.deepEqual(args(runtime, 'WORKDIR'), ['/app']);
    assert.deepEqual(args(runtime, 'ENV'), ['NODE_ENV=production', 'NODE_OPTIONS=--max-semi-space-size=8']);
    // tsconfig.build.json compiles src/ to dist/, where package.json's bin points.
    const pkg = JSON.parse(readText('package.json')) as { bin: Record<string, string> };
    assert.deepEqual(pkg.bin, { 'token-broker': 'dist/main.js' });
    assert.equal(at(JSON.parse(readText('tsconfig.build.json')), 'compilerOptions.outDir'), 'dist');
  });

  it('every package src/ imports at run time is a production dependency (the runtime stage omits dev ones); optional ones only through import()', () => {
    const pkg = JSON.parse(readText('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string>; optionalDependencies?: Record<string, string> };
    const optional = pkg.optionalDependencies ?? {};
    // The image installs optional packages too (it omits dev ones only), so tracing can run in it.
    assert.doesNotMatch(readText('Dockerfile'), /--omit[= ]optional|--no-optional/);
    const dynamicOnly = new Set<string>();
    const staticImports = new Set<string>();
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
    const imported = new Map<string, string>();
    for (const file of files) {
      const text = readFileSync(join(ROOT, 'src', file), 'utf8');
      // `import type` / `export type` are erased by tsc; every other import (even of types only, under
      // verbatimModuleSyntax) stays in dist/ and loads the package.
      const pattern = /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
      for (const match of text.matchAll(pattern)) {
        const specifier = match[1] ?? match[2] ?? '';
        if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
        const parts = specifier.split('/');
        const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
        if (!imported.has(name)) imported.set(name, `src/${file}`);
        (match[2] !== undefined ? dynamicOnly : staticImports).add(name);
      }
    }
    for (const name of staticImports) dynamicOnly.delete(name);
    assert.ok(imported.has('express') && imported.has('yaml'), `found ${[...imported.keys()].join(', ')}`);
    for (const [name, file] of imported) {
      // An optional package may be absent: only a dynamic import(), which the broker catches, may load it.
      if (name in optional) {
        assert.ok(dynamicOnly.has(name), `${file} imports the optional "${name}" statically: without it the broker could not start`);
        continue;
      }
      assert.ok(name in pkg.dependencies, `${file} imports "${name}", which is ${name in pkg.devDependencies ? 'only a devDependency' : 'not a dependency'}: the image would fail with ERR_MODULE_NOT_FOUND`);
    }
  });

  it('runs as a numeric non-root user, node /app/dist/main.js serve, with no health check and no volume', () => {
    assert.deepEqual(args(runtime, 'USER'), ['10001:10001']);
    assert.deepEqual(args(runtime, 'ENTRYPOINT'), ['["node", "/app/dist/main.js"]']);
    assert.deepEqual(args(runtime, 'CMD'), ['["serve"]']);
    assert.deepEqual(JSON.parse(args(runtime, 'ENTRYPOINT')[0] ?? ''), ['node', '/app/dist/main.js']);
    assert.deepEqual(args(runtime, 'EXPOSE'), ['8080']);
    for (const keyword of ['HEALTHCHECK', 'VOLUME', 'ADD', 'ARG']) {
      assert.deepEqual(instructions.filter((i) => i.keyword === keyword), [], `no ${keyword}`);
    }
    // USER comes after everything that writes into the image.
    const keywords = runtime?.instructions.map((i) => i.keyword) ?? [];
    assert.deepEqual(keywords.slice(keywords.indexOf('USER')), ['USER', 'EXPOSE', 'ENTRYPOINT', 'CMD']);
  });

  it('the Kubernetes Deployment runs as the image\'s user, and with a read-only root filesystem', () => {
    const [uid, gid] = (args(runtime, 'USER')[0] ?? '').split(':').map(Number);
    const deployment = readYaml('deploy/kubernetes/base/deployment.yaml');
    const container = named(arrayAt(deployment, 'spec.template.spec.containers'), 'broker');
    assert.equal(at(container, 'securityContext.runAsUser'), uid);
    assert.equal(at(container, 'securityContext.runAsGroup'), gid);
    assert.equal(at(container, 'securityContext.readOnlyRootFilesystem'), true);
  });

  it('sets the V8 flags it was measured with, and the Kubernetes Deployment keeps them beside its heap bound', () => {
    const env = args(runtime, 'ENV');
    assert.ok(env.includes('NODE_OPTIONS=--max-semi-space-size=8'), `ENV: ${env.join(' | ')}`);
    const imageFlags = (env.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length) ?? '').split(/\s+/);
    const deployment = readYaml('deploy/kubernetes/base/deployment.yaml');
    const container = named(arrayAt(deployment, 'spec.template.spec.containers'), 'broker');
    // The Deployment's NODE_OPTIONS replaces the image's, so it must repeat every flag of it.
    const deployed = String(at(named(arrayAt(container, 'env'), 'NODE_OPTIONS'), 'value')).split(/\s+/);
    for (const flag of imageFlags) assert.ok(deployed.includes(flag), `the Deployment's NODE_OPTIONS lacks ${flag}`);
  });

  it('copies only files that exist in the build context and that .dockerignore keeps', () => {
    const sources = args(build, 'COPY')
      .concat(args(runtime, 'COPY'))
      .filter((copy) => !copy.startsWith('--from='))
      .flatMap((copy) => copy.split(/\s+/).slice(0, -1));
    assert.deepEqual(sources, ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'package.json', 'package-lock.json']);
    for (const source of sources) {
      assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
      assert.equal(ignored(source), false, `${source} is in the build context`);
    }
    assert.equal(ignored('src/main.ts'), false);
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules, dist, test, .git, benchmark results and stray keys out of the build context', () => {
    for (const path of ['node_modules', 'node_modules/jose/package.json', 'dist/main.js', 'test/deploy/compose.test.ts', '.git', '.git/config', 'bench/results', 'bench/results/run.json', 'scratch/x.ts', 'deploy/kubernetes/base/broker.yaml', 'config/keys/key.pem', 'README.md', 'coverage/lcov.info', 'npm-debug.log']) {
      assert.equal(ignored(path), true, path);
    }
    for (const pattern of ['node_modules', 'dist', 'test', '.git', 'bench/results']) assert.ok(IGNORE.includes(pattern), pattern);
  });
});
