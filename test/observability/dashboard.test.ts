import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { redisUnavailableReason, startRedisServer } from '../support/redis-server.js';

/**
 * The Grafana dashboard is checked like code: its structure, its queries (valid PromQL, per promtool), and every
 * metric family it plots against what a real broker exports, so a renamed metric shows up here and not as an
 * empty panel during an incident.
 */

const DASHBOARD_PATH = 'deploy/grafana/token-broker.json';

interface Target {
  readonly refId?: string;
  readonly expr?: string;
  readonly format?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}

interface Panel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly gridPos?: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
  readonly fieldConfig?: { readonly defaults?: { readonly custom?: { readonly stacking?: { readonly mode?: string } } } };
  readonly options?: { readonly calculate?: boolean };
}

interface TemplateVariable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { readonly query?: string };
  readonly definition?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}

interface Dashboard {
  readonly uid?: string;
  readonly title?: string;
  readonly schemaVersion?: number;
  readonly panels?: readonly Panel[];
  readonly templating?: { readonly list?: readonly TemplateVariable[] };
}

const dashboard = JSON.parse(readFileSync(new URL(`../../${DASHBOARD_PATH}`, import.meta.url), 'utf8')) as Dashboard;

/** Every panel, including those nested in collapsed rows. */
function allPanels(panels: readonly Panel[] = dashboard.panels ?? []): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

/** Every PromQL expression: panel targets and the queries of template variables. */
function allExpressions(): { where: string; expr: string }[] {
  const fromPanels = allPanels().flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `panel ${panel.id} "${panel.title}" ${target.refId}`, expr: target.expr ?? '' })));
  const fromVariables = (dashboard.templating?.list ?? [])
    .filter((variable) => variable.type === 'query')
    .map((variable) => ({ where: `variable $${variable.name}`, expr: typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '') }));
  return [...fromPanels, ...fromVariables];
}

/** `token_broker_*` series names used in an expression, reduced to their family (no _bucket/_sum/_count). */
function familiesIn(expr: string): string[] {
  return [...expr.matchAll(/\btoken_broker_[a-zA-Z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

// ---- skips: promtool and redis-server are required in CI, optional on a developer machine ----

function promtoolSkip(): string | false {
  if (spawnSync('promtool', ['--version']).status === 0) return false;
  if (process.env.CI === 'true') return false; // run, and fail loudly: .ci/run must install it
  return 'promtool is not on PATH (install Debian\'s prometheus package to check the dashboard\'s PromQL)';
}

function redisSkip(): string | false {
  try {
    return redisUnavailableReason() ?? false;
  } catch {
    return false; // CI=true without redis-server: run, and fail loudly when it cannot start
  }
}

// ---- a real scrape ----

async function waitForRedisUp(h: Harness): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const metrics = await h.http.get('/metrics').expect(200);
    if (/^token_broker_redis_up 1$/m.test(metrics.text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail('token_broker_redis_up did not become 1 within 5 s');
}

/** A broker with a real Redis after an issued, a cached and a rejected exchange: what a working replica exports. */
async function scrapeBroker(): Promise<string> {
  const redis = await startRedisServer();
  let h: Harness | undefined;
  try {
    h = await startHarness({ config: () => ({ cache: { redis: { url: redis.url } } }) });
    await waitForRedisUp(h);
    const subject = await h.issuer.projectedToken();
    assert.equal((await h.exchange(subject)).status, 200);
    assert.equal((await h.exchange(subject)).status, 200);
    assert.equal((await h.exchange(await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) }))).status, 400);
    return (await h.http.get('/metrics').expect(200)).text;
  } finally {
    await h?.close();
    await redis.stop();
  }
}

/** Family names declared in a scrape (# TYPE lines). */
function exposedFamilies(scrape: string): Set<string> {
  return new Set([...scrape.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
}

describe(DASHBOARD_PATH, () => {
  const panels = allPanels();

  it('is a Grafana dashboard: uid, title, schemaVersion 39, and a Prometheus datasource variable every query uses', () => {
    assert.equal(dashboard.uid, 'token-broker');
    assert.equal(dashboard.title, 'Token broker');
    assert.equal(dashboard.schemaVersion, 39);
    const variables = dashboard.templating?.list ?? [];
    const datasource = variables.find((variable) => variable.type === 'datasource');
    assert.equal(datasource?.name, 'datasource');
    assert.equal(datasource?.query, 'prometheus');
    for (const variable of variables.filter((v) => v.type === 'query')) {
      assert.deepEqual(variable.datasource, { type: 'prometheus', uid: '${datasource}' }, `variable ${variable.name}`);
    }
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel ${panel.id}`);
      for (const target of panel.targets ?? []) assert.deepEqual(target.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel ${panel.id} ${target.refId}`);
    }
  });

  it('panels have unique ids, a title and a place on the 24-column grid; every target has an expr and a unique refId', () => {
    const ids = panels.map((panel) => panel.id);
    assert.ok(ids.every((id) => Number.isInteger(id)), 'every panel has an integer id');
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of panels) {
      assert.ok((panel.title ?? '').length > 0, `panel ${panel.id} has a title`);
      assert.ok((panel.type ?? '').length > 0, `panel ${panel.id} has a type`);
      const grid = panel.gridPos;
      assert.ok(grid !== undefined && grid.w > 0 && grid.h > 0 && grid.x >= 0 && grid.x + grid.w <= 24 && grid.y >= 0, `panel ${panel.id} gridPos`);
      if (panel.type === 'row') continue;
      const targets = panel.targets ?? [];
      assert.ok(targets.length > 0, `panel ${panel.id} has targets`);
      const refIds = targets.map((target) => target.refId);
      assert.equal(new Set(refIds).size, refIds.length, `panel ${panel.id}: refIds are unique`);
      for (const target of targets) {
        assert.ok(typeof target.refId === 'string' && target.refId.length > 0, `panel ${panel.id}: a target without refId`);
        assert.ok(typeof target.expr === 'string' && target.expr.includes('token_broker_'), `panel ${panel.id} ${target.refId}: expr`);
      }
    }
  });

  it('has the panels an SRE needs: outcomes stacked, rejections by reason, three heatmaps, cache, Redis, JWKS, latency, keys', () => {
    const byTitle = new Map(panels.map((panel) => [panel.title ?? '', panel]));
    const expect = (title: string, type: string, family: string) => {
      const panel = byTitle.get(title);
      assert.equal(panel?.type, type, `panel "${title}" is a ${type}`);
      assert.ok(panel.targets?.some((target) => familiesIn(target.expr ?? '').includes(family)), `panel "${title}" plots ${family}`);
      return panel;
    };
    assert.equal(expect('Exchanges by outcome', 'timeseries', 'token_broker_exchanges_total').fieldConfig?.defaults?.custom?.stacking?.mode, 'normal');
    assert.match(byTitle.get('Exchanges by outcome')?.targets?.[0]?.expr ?? '', /sum by \(outcome\)/);
    assert.match(expect('Rejections by reason', 'timeseries', 'token_broker_exchanges_total').targets?.[0]?.expr ?? '', /sum by \(reason\).*outcome="rejected"/);
    for (const [title, family] of [
      ['Expired subject tokens: how long ago they expired', 'token_broker_subject_token_expired_for_seconds'],
      ['Accepted subject tokens: life left', 'token_broker_subject_token_remaining_seconds'],
      ['Clock skew: how far tokens are ahead', 'token_broker_clock_skew_seconds'],
    ] as const) {
      const heatmap = expect(title, 'heatmap', family);
      assert.equal(heatmap.targets?.[0]?.format, 'heatmap', `${title}: bucket format`);
      assert.match(heatmap.targets?.[0]?.expr ?? '', new RegExp(`sum by \\(le\\) \\(increase\\(${family}_bucket\\{`), `${title}: buckets`);
      assert.equal(heatmap.options?.calculate, false, `${title}: Prometheus buckets, not recalculated`);
    }
    assert.match(expect('Cache hit ratio', 'timeseries', 'token_broker_cache_requests_total').targets?.[0]?.expr ?? '', /result="hit"/);
    expect('Redis up per replica', 'state-timeline', 'token_broker_redis_up');
    assert.match(
      expect('JWKS last successful fetch age per issuer', 'timeseries', 'token_broker_jwks_last_success_timestamp_seconds').targets?.[0]?.expr ?? '',
      /^time\(\) - max by \(issuer\)/,
    );
    const latency = expect('Latency p50 / p99 by route', 'timeseries', 'token_broker_http_request_duration_seconds');
    assert.deepEqual(
      latency.targets?.map((target) => /^histogram_quantile\((0\.\d+), sum by \(route, le\)/.exec(target.expr ?? '')?.[1]),
      ['0.5', '0.99'],
    );
    const keys = expect('Signing key states', 'table', 'token_broker_signing_key_info');
    assert.ok(keys.targets?.some((target) => familiesIn(target.expr ?? '').includes('token_broker_signing_key_state_change_timestamp_seconds')));
  });

  it('every query is valid PromQL (promtool check rules, with the dashboard variables filled in)', { skip: promtoolSkip() }, () => {
    const expressions = allExpressions().filter(({ expr }) => !expr.startsWith('label_values('));
    const rules = expressions.map(({ expr }, i) => ({
      record: `dashboard:query_${i}`,
      expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*').replaceAll('$namespace', '.*'),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'tb-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yaml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(result.error, undefined, `promtool could not run: ${String(result.error)}`);
      assert.equal(result.stdout, `Checking ${file}\n  SUCCESS: ${rules.length} rules found\n\n`, result.stdout + result.stderr);
      assert.equal(result.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('against a real scrape of the broker', { skip: redisSkip() }, () => {
    let exposed = new Set<string>();
    before(async () => {
      exposed = exposedFamilies(await scrapeBroker());
    });

    it('every token_broker_* metric family the dashboard queries exists', () => {
      const missing = allExpressions().flatMap(({ where, expr }) => familiesIn(expr).filter((family) => !exposed.has(family)).map((family) => `${where}: ${family}`));
      assert.deepEqual(missing, []);
      const used = new Set(allExpressions().flatMap(({ expr }) => familiesIn(expr)));
      assert.ok(used.size >= 12, `the dashboard covers the broker's metrics (${used.size} families)`);
    });
  });
});
