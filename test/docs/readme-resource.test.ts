import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { parseResourceIndicator } from '../../src/server/rules/resource-indicator.js';
import { apiNamedBy, compileResourceTargets } from '../../src/server/rules/resource-targets.js';

/**
 * README's `apis` block for RFC 8707 `resource`, as written: put in place of the example configuration's own, it must
 * validate, and the resources the README's text names must match (or not match) as the text says.
 */

const ROOT = join(import.meta.dirname, '..', '..');

async function readmeApisBlock(): Promise<unknown> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const intro = readme.indexOf('`resource` needs an `apis` block');
  assert.ok(intro >= 0, 'README introduces the apis block');
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(intro))?.[1];
  assert.ok(block !== undefined, 'a yaml block follows the introduction');
  return (parse(block) as { apis: unknown }).apis;
}

describe('README: the apis block for resource, as written', () => {
  it('validates in the example configuration, and names the API the text says it names', async () => {
    const example = parse(await readFile(join(ROOT, 'config', 'broker.example.yaml'), 'utf8')) as Record<string, unknown>;
    const result = validateConfig({ ...example, apis: await readmeApisBlock() }, { requireKeysDir: false });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    const targets = compileResourceTargets(result.config.apis, result.config.policies);
    const named = (url: string) => apiNamedBy(parseResourceIndicator(url), targets);
    assert.equal(named('https://gateway.example.com/orders/'), 'orders');
    assert.equal(named('https://Gateway.Example.com/orders/42'), 'orders', 'host compared case-insensitively');
    assert.equal(named('https://gateway.example.com/orders-admin/'), undefined, '/orders-admin/ is not under /orders/');
  });
});
