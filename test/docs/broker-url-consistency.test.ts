import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../../src/server/config/load-config.js';
import { DEFAULT_SUGGESTED_BROKER_URL } from '../../src/tools/cli/lint.js';

/*
 * One broker URL everywhere a user copies it from. The shipped manifests decide what is served: the TLS overlay
 * serves https://token-broker.platform.svc.cluster.local (Service port 443, PUBLIC_URL), the base serves
 * http://token-broker.platform.svc.cluster.local (Service port 80). Every URL of the broker in README.md, docs/,
 * examples/, config/ and the CLI's defaults must be the TLS overlay's, the recommended install; the base's plain
 * HTTP URL may appear only where the base itself is described. A step copied from the README then reaches a
 * listener that answers at that scheme and port.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BROKER_URL = /\bhttps?:\/\/token-broker(?:\.[A-Za-z0-9-]+)*(?::\d+)?/g;
/** Where the plain-HTTP base is described as such. */
const DESCRIBES_THE_BASE = new Set(['deploy/kubernetes/base/broker.yaml', 'deploy/kubernetes/base/service.yaml', 'docs/deployment.md']);

type Manifest = Record<string, unknown>;

function rendered(dir: string): Manifest[] {
  // The files the kustomizations are made of, read directly: the overlay's patches are checked against the real
  // `kubectl kustomize` output in test/deploy/kubernetes-manifests.test.ts.
  return parseAllDocuments(readFileSync(`${ROOT}${dir}`, 'utf8')).map((doc) => doc.toJS() as Manifest);
}

/** The origin a kustomization serves: publicUrl after the overlay's environment, checked against its Service port. */
async function servedOrigins(): Promise<{ tls: string; base: string }> {
  const baseService = rendered('deploy/kubernetes/base/service.yaml')[0] as { spec: { ports: { port: number }[] } };
  const base = await loadConfigFile(`${ROOT}deploy/kubernetes/base/broker.yaml`, {});
  const overlay = rendered('deploy/kubernetes/overlays/tls/kustomization.yaml')[0] as { patches: { patch: string }[] };
  const overlayOps = overlay.patches.flatMap((p) => parseAllDocuments(p.patch).flatMap((d) => d.toJS() as { op: string; path: string; value: unknown }[]));
  const env = Object.fromEntries(
    overlayOps
      .filter((op) => op.path.endsWith('/env/-'))
      .map((op) => op.value as { name: string; value: string })
      .map((variable) => [variable.name, variable.value]),
  );
  const tls = await loadConfigFile(`${ROOT}deploy/kubernetes/base/broker.yaml`, env);
  const tlsServicePort = overlayOps.find((op) => op.path === '/spec/ports/0')?.value as { port: number };
  const baseUrl = new URL(base.server.publicUrl);
  const tlsUrl = new URL(tls.server.publicUrl);
  assert.equal(baseUrl.protocol, 'http:');
  assert.equal(Number(baseUrl.port || 80), baseService.spec.ports[0]?.port, 'the base\'s publicUrl port is its Service port');
  assert.equal(base.server.tls, undefined, 'the base serves plain HTTP');
  assert.equal(tlsUrl.protocol, 'https:');
  assert.equal(Number(tlsUrl.port || 443), tlsServicePort.port, 'the TLS overlay\'s publicUrl port is its Service port');
  assert.notEqual(tls.server.tls, undefined, 'the TLS overlay serves HTTPS');
  return { tls: tlsUrl.origin, base: baseUrl.origin };
}

function trackedFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '-z', 'README.md', 'docs', 'examples', 'config', 'deploy', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return listed.split('\0').filter((file) => file !== '' && /\.(md|ya?ml|json|ts|sh)$/.test(file));
}

describe('one broker URL in every snippet, example and default', () => {
  it('every broker URL in README.md, docs/, examples/, config/, deploy/ and src/ is what the shipped manifests serve', async () => {
    const origins = await servedOrigins();
    const found: string[] = [];
    const wrong: string[] = [];
    for (const file of trackedFiles()) {
      const text = readFileSync(`${ROOT}${file}`, 'utf8');
      for (const match of text.matchAll(BROKER_URL)) {
        const url = match[0];
        const line = text.slice(0, match.index).split('\n').length;
        found.push(`${file}:${line}`);
        if (url === origins.tls) continue;
        if (url === origins.base && DESCRIBES_THE_BASE.has(file)) continue;
        wrong.push(`${file}:${line}: ${url}`);
      }
    }
    assert.ok(found.length >= 20, `only ${found.length} broker URLs found: the pattern is broken`);
    assert.deepEqual(wrong, [], `broker URLs that no shipped manifest serves (expected ${origins.tls})`);
  });

  it('config/broker.example.yaml, which the generated Tyk definitions come from, and lint\'s default URL are the TLS overlay\'s', async () => {
    const { tls } = await servedOrigins();
    const example = await loadConfigFile(`${ROOT}config/broker.example.yaml`, {});
    assert.equal(example.server.publicUrl, tls);
    assert.notEqual(example.server.tls, undefined, 'the example that says https also serves it');
    assert.equal(new URL(DEFAULT_SUGGESTED_BROKER_URL).origin, tls);
  });

  it('the Tyk API definition generated from the example trusts and fetches from that URL', async () => {
    const { tls } = await servedOrigins();
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'tyk', 'api', '--config', 'config/broker.example.yaml', '--api-id', 'orders', '--listen-path', '/orders/', '--upstream', 'http://orders.payments.svc:8080'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PUBLIC_URL: '', TLS_CERT_FILE: '', TLS_KEY_FILE: '' },
    });
    assert.equal(result.status, 0, result.stderr);
    const urls = [...result.stdout.matchAll(BROKER_URL)].map((m) => m[0]);
    const base64Urls = [...result.stdout.matchAll(/"([A-Za-z0-9+/=]{40,})"/g)].map((m) => Buffer.from(m[1] ?? '', 'base64').toString('utf8')).filter((text) => text.startsWith('http'));
    assert.ok(urls.length + base64Urls.length > 0, 'the definition names the broker');
    for (const url of [...urls, ...base64Urls]) assert.equal(new URL(url).origin, tls, url);
  });
});
