import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigFile, parseConfigText, ConfigError } from '../../src/server/config/load-config.js';
import type { ConfigProblem } from '../../src/server/config/validate-config.js';
import { MINIMAL_CONFIG_YAML } from '../support/config-yaml.js';
import { useScratchDir } from '../support/scratch-dir.js';

const VALID_YAML = MINIMAL_CONFIG_YAML;

/** Runs `fn`, which must throw a ConfigError, and returns its problems. */
async function configProblems(fn: () => Promise<unknown> | unknown): Promise<readonly ConfigProblem[]> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfigFile', () => {
  const scratch = useScratchDir('broker-load-config-');
  const write = (name: string, text: string): Promise<string> => scratch.write(name, text);

  it('loads a valid file, with defaults filled in', async () => {
    const config = await loadConfigFile(await write('valid.yaml', VALID_YAML), {});
    assert.equal(config.server.port, 9000);
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.issuers[0]?.kind, 'kubernetes');
    assert.equal(Object.isFrozen(config), true);
  });

  it('reports a YAML syntax error with its line number', async () => {
    const path = await write('syntax.yaml', 'server:\n  publicUrl: https://a.example\nissuers: [\n  - name: x\nrules: []\n');
    const problems = await configProblems(() => loadConfigFile(path, {}));
    assert.ok(problems.length >= 1);
    assert.match(problems[0]?.path ?? '', /^line \d+$/);
    assert.ok(problems.every((p) => /^line \d+$/.test(p.path)), JSON.stringify(problems));
  });

  it('names the line of a tab used as indentation', async () => {
    const path = await write('indent.yaml', 'server:\n  publicUrl: https://a.example\n\tport: 80\n');
    const problems = await configProblems(() => loadConfigFile(path, {}));
    assert.equal(problems[0]?.path, 'line 3');
    assert.match(problems[0]?.message ?? '', /Tabs are not allowed as indentation/);
  });

  it('refuses duplicate keys, naming the line of the second one', async () => {
    const path = await write('duplicate.yaml', VALID_YAML.replace('  port: 9000\n', '  port: 9000\n  port: 9001\n'));
    const problems = await configProblems(() => loadConfigFile(path, {}));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'line 3');
    assert.match(problems[0]?.message ?? '', /Map keys must be unique/);
  });

  it('puts the file name in the error message', async () => {
    const path = await write('named.yaml', 'server: [\n');
    await assert.rejects(() => loadConfigFile(path, {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.message.startsWith(`${path}: invalid configuration\n`), error.message);
      return true;
    });
  });

  it('reports a missing file as one problem', async () => {
    const problems = await configProblems(() => loadConfigFile(scratch.file('does-not-exist.yaml'), {}));
    assert.deepEqual(problems, [{ path: '(file)', message: 'cannot read the file (ENOENT)' }]);
  });

  it('reports a directory given as the file', async () => {
    const problems = await configProblems(() => loadConfigFile(scratch.path, {}));
    assert.deepEqual(problems, [{ path: '(file)', message: 'cannot read the file (EISDIR)' }]);
  });

  it('lets PORT override server.port', async () => {
    const config = await loadConfigFile(await write('port.yaml', VALID_YAML), { PORT: '18080' });
    assert.equal(config.server.port, 18080);
  });

  it('supplies server.port from PORT when the file has no server.port', async () => {
    const config = await loadConfigFile(await write('no-port.yaml', VALID_YAML.replace('  port: 9000\n', '')), { PORT: '18081' });
    assert.equal(config.server.port, 18081);
  });

  it('ignores an empty PORT', async () => {
    const config = await loadConfigFile(await write('empty-port.yaml', VALID_YAML), { PORT: '' });
    assert.equal(config.server.port, 9000);
  });

  for (const port of ['http', '0', '65536', '80.5', '-1']) {
    it(`refuses PORT=${port} as a problem of the environment`, async () => {
      const path = await write(`bad-port-${port}.yaml`, VALID_YAML);
      const problems = await configProblems(() => loadConfigFile(path, { PORT: port }));
      assert.deepEqual(problems, [{ path: 'PORT (environment)', message: `must be an integer port from 1 to 65535, got "${port}"` }]);
    });
  }

  it('reports an environment problem together with the file problems', async () => {
    const path = await write('both.yaml', VALID_YAML.replace('rules:', 'extra: 1\nrules:'));
    const problems = await configProblems(() => loadConfigFile(path, { PORT: 'x' }));
    assert.deepEqual(problems, [
      { path: 'PORT (environment)', message: 'must be an integer port from 1 to 65535, got "x"' },
      { path: 'extra', message: 'unknown key' },
    ]);
  });

  it('REDIS_URL sets cache.redis.url, keeping the rest of the Redis block', async () => {
    const path = await write('redis.yaml', VALID_YAML);
    const config = await loadConfigFile(path, { REDIS_URL: 'rediss://cache.internal:6380/2' });
    assert.equal(config.cache.redis?.url, 'rediss://cache.internal:6380/2');
    assert.equal(config.cache.redis?.keyPrefix, 'tb:');
    assert.equal(config.cache.redis?.commandTimeoutMs, 100);
  });

  it('a REDIS_URL that is not redis:// or rediss:// is a problem at cache.redis.url', async () => {
    const path = await write('redis-bad.yaml', VALID_YAML);
    const problems = await configProblems(() => loadConfigFile(path, { REDIS_URL: 'http://127.0.0.1:6379' }));
    assert.deepEqual(problems.map((p) => p.path), ['cache.redis.url']);
  });

  it('names the field path of a bad value in the file', async () => {
    const path = await write('bad-type.yaml', VALID_YAML.replace('audiences: [tyk-token-broker]', 'audiences: tyk-token-broker'));
    const problems = await configProblems(() => loadConfigFile(path, {}));
    assert.deepEqual(problems, [{ path: 'issuers[0].audiences', message: 'expected array, received string' }]);
  });

  it('refuses an empty file', async () => {
    const path = await write('empty.yaml', '');
    const problems = await configProblems(() => loadConfigFile(path, {}));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, '(root)');
  });
});

describe('parseConfigText', () => {
  it('parses YAML into plain data', () => {
    assert.deepEqual(parseConfigText('a: [1, two]\nb: {c: true}\n', 'inline'), { a: [1, 'two'], b: { c: true } });
  });

  it('refuses duplicate keys in flow mappings too', () => {
    assert.throws(() => parseConfigText('a: {b: 1, b: 2}\n', 'inline'), ConfigError);
  });
});
