import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, killAllCli } from '../support/cli-run.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';

/**
 * The kill-switch commands of README.md ("The kill switch") and docs/runbook.md ("Kill switch"), as written, run
 * against a real Redis: only the configuration path, the shell variables and the example deny id are substituted.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const skip = redisUnavailableReason();

/** The first ```sh block after `heading` in `file`, its continuation lines joined, one command per line. */
async function commandsAfter(file: string, heading: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const at = text.indexOf(heading);
  assert.ok(at >= 0, `${file} has ${heading}`);
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at))?.[1];
  assert.ok(block !== undefined, `${file}: a sh block follows ${heading}`);
  return block.replace(/\\\n\s*/g, '').split('\n').filter((line) => line.trim() !== '');
}

/** Splits a command line as the shell would for these commands: words, '…' and "…" quoting. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const match of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(match[1] ?? match[2] ?? match[3] ?? '');
  return out;
}

describe('the kill-switch commands of the docs, as written', { skip }, () => {
  const scratch = useScratchDir('readme-deny-');
  let server: RedisServer;
  let config: string;

  before(async () => {
    server = await startRedisServer();
    config = await scratch.write('broker.yaml', [
      'server: { publicUrl: "https://broker.example" }',
      'issuers: [{ name: test-cluster, issuer: "https://issuer.example", audiences: [broker] }]',
      'rules: [{ name: everyone, policies: [read] }]',
      'signing: { keysDir: /unused }',
      `cache: { redis: { url: "${server.url}", keyPrefix: "readme-${randomUUID()}:" } }`,
      '',
    ]);
  });
  after(async () => {
    await killAllCli();
    await server.stop();
  });

  const run = (line: string) => {
    const [program, ...args] = words(line.replaceAll('"$USER"', 'alice'));
    assert.equal(program, 'token-broker');
    return runCli(args.map((arg) => (arg === 'broker.yaml' || arg === '/etc/token-broker/broker.yaml' ? config : arg)));
  };

  it('README: add, list and remove run and do what the text says', async () => {
    const [add, list, remove] = await commandsAfter('README.md', '## The kill switch');
    assert.ok(add !== undefined && list !== undefined && remove !== undefined);
    const added = await run(add);
    assert.equal(added.code, 0, added.stderr);
    const id = /^added deny (\S+), in force until /.exec(added.stdout)?.[1];
    assert.ok(id !== undefined, added.stdout);
    const listed = await run(list);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /namespace=payments,serviceAccount=argo-ci\s+\S+\s+alice\s+INC-1234: compromised runner, ask #platform-oncall/);
    const exampleId = words(remove).at(-1) ?? '';
    const removed = await run(remove.replace(exampleId, id));
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, `removed deny ${id}\n`);
  });

  it('runbook: the incident deny command runs', async () => {
    const [add] = await commandsAfter('docs/runbook.md', '## Kill switch');
    assert.ok(add !== undefined);
    const added = await run(add);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^added deny \S+, in force until /);
  });
});
