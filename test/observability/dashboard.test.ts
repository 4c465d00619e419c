import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Histogram } from 'prom-client';
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
  readonly description?: string;
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

/** Label names an expression groups by (`by (...)`) or selects on (`{name="..."}`), but the target labels Prometheus adds. */
function brokerLabelsIn(expr: string): string[] {
  const grouped = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((label) => label.trim()));
  const selected = [...expr.matchAll(/[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"/g)].map((m) => m[1]!);
  return [...new Set([...grouped, ...selected])].filter((label) => label !== '' && !TARGET_LABELS.has(label));
}

/** Labels the scrape configuration attaches (deploy/prometheus), not the broker: every panel filters or splits on them. */
const TARGET_LABELS = new Set(['job', 'namespace', 'instance']);

/** The panels of the row titled `title`: those after it up to the next row. */
function rowPanels(title: string): Panel[] {
  const top = dashboard.panels ?? [];
  const start = top.findIndex((panel) => panel.type === 'row' && panel.title === title);
  assert.ok(start >= 0, `a row "${title}"`);
  const end = top.findIndex((panel, i) => i > start && panel.type === 'row');
  return [...top.slice(start + 1, end < 0 ? undefined : end), ...(top[start]!.panels ?? [])];
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

/**
 * Label names each `token_broker_*` family is declared with, read from the broker's registry (a labelled counter
 * that never counted, such as reloads by result, has no sample in a scrape to read them from); histograms add `le`.
 */
function declaredLabelNames(h: Harness): Map<string, readonly string[]> {
  const names = new Map<string, readonly string[]>();
  for (const metric of h.broker.metrics.registry.getMetricsAsArray()) {
    if (!metric.name.startsWith('token_broker_')) continue;
    // prom-client keeps them on the instance without typing them.
    const labelNames = (metric as unknown as { readonly labelNames?: unknown }).labelNames;
    assert.ok(Array.isArray(labelNames), `${metric.name}: prom-client exposes labelNames`);
    names.set(metric.name, metric instanceof Histogram ? [...(labelNames as string[]), 'le'] : (labelNames as string[]));
  }
  return names;
}

interface Scrape {
  readonly text: string;
  readonly labelNames: Map<string, readonly string[]>;
}

/**
 * A broker with a real Redis and a static deny, after an issued, a cached, a rejected (expired) and a denied exchange:
 * what a working replica exports.
 */
async function scrapeBroker(): Promise<Scrape> {
  const redis = await startRedisServer();
  let h: Harness | undefined;
  try {
    h = await startHarness({
      config: () => ({
        cache: { redis: { url: redis.url } },
        denies: { static: [{ id: 'freeze-ci', namespace: 'payments', serviceAccount: 'argo-ci', reason: 'INC-1: dashboard test' }] },
      }),
    });
    await waitForRedisUp(h);
    const subject = await h.issuer.projectedToken();
    assert.equal((await h.exchange(subject)).status, 200);
    assert.equal((await h.exchange(subject)).status, 200);
    assert.equal((await h.exchange(await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) }))).status, 400);
    const denied = await h.exchange(await h.issuer.projectedToken({ namespace: 'payments', serviceAccount: 'argo-ci' }));
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error, 'access_denied');
    return { text: (await h.http.get('/metrics').expect(200)).text, labelNames: declaredLabelNames(h) };
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

  it('has a "Kill switch and configuration" row: denies, deny hits and changes, denied exchanges, reloads, the config in force', () => {
    const row = rowPanels('Kill switch and configuration');
    const byTitle = new Map(row.map((panel) => [panel.title ?? '', panel]));
    const expr = (title: string, type: string, family: string, refId = 'A') => {
      const panel = byTitle.get(title);
      assert.equal(panel?.type, type, `panel "${title}" is a ${type} in the row`);
      const target = panel.targets?.find((t) => t.refId === refId);
      assert.ok(familiesIn(target?.expr ?? '').includes(family), `panel "${title}" ${refId} plots ${family}`);
      return target?.expr ?? '';
    };
    assert.match(expr('Active denies per replica', 'timeseries', 'token_broker_denies_active'), /^max by \(instance, source\)/);
    // Every replica counts each change it applies: a sum would count one deny once per replica.
    assert.match(expr('Deny changes (added / removed)', 'timeseries', 'token_broker_deny_changes_total'), /^max by \(change\) \(increase\(/);
    assert.match(expr('Deny hits by kind', 'timeseries', 'token_broker_deny_hits_total'), /^sum by \(kind\) \(rate\(/);
    assert.match(expr('Exchanges refused: denied, by issuer', 'timeseries', 'token_broker_exchanges_total'), /^sum by \(issuer\) \(rate\(token_broker_exchanges_total\{reason="denied", /);
    assert.match(expr('Configuration reloads by result', 'timeseries', 'token_broker_config_reloads_total'), /^sum by \(result\) \(increase\(/);
    assert.match(
      expr('Time since the last successful configuration reload', 'timeseries', 'token_broker_config_last_reload_success_timestamp_seconds'),
      /^time\(\) - max by \(instance\)/,
    );
    assert.match(expr('Configuration in force per replica', 'table', 'token_broker_config_info'), /^max by \(instance, hash\)/);
    expr('Configuration in force per replica', 'table', 'token_broker_config_last_reload_successful', 'B');
    expr('Configuration in force per replica', 'table', 'token_broker_config_last_reload_success_timestamp_seconds', 'C');
    for (const target of byTitle.get('Configuration in force per replica')?.targets ?? []) assert.equal(target.format, 'table', `table target ${target.refId}`);
    // Each description sends the SRE to the runbook section that says what to do, and that section exists.
    const runbook = readFileSync(new URL('../../docs/runbook.md', import.meta.url), 'utf8');
    const headings = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => m[1]!));
    assert.ok([...headings].some((heading) => heading.startsWith('Kill switch')), 'docs/runbook.md has a "Kill switch" section');
    assert.ok(headings.has('TokenBrokerConfigReloadFailing'), 'docs/runbook.md has a TokenBrokerConfigReloadFailing section');
    // ... and the runbook names these panels by their titles, so a renamed panel is renamed there too.
    const prose = runbook.replace(/\s+/g, ' ');
    for (const title of ['Kill switch and configuration', 'Active denies per replica', 'Deny hits by kind', 'Exchanges refused: denied, by issuer', 'Configuration in force per replica', 'Configuration reloads by result']) {
      assert.ok(prose.includes(`*${title}*`), `docs/runbook.md names the dashboard's "${title}"`);
      assert.ok(title === 'Kill switch and configuration' || byTitle.has(title), `"${title}" is a panel of the row`);
    }
    for (const panel of row) {
      const description = panel.description ?? '';
      assert.match(description, /docs\/runbook\.md, "(Kill switch|TokenBrokerConfigReloadFailing)"/, `panel "${panel.title}" points to the runbook`);
    }
  });

  it('top-level panels do not overlap on the grid', () => {
    const top = dashboard.panels ?? [];
    const overlaps: string[] = [];
    top.forEach((a, i) => {
      for (const b of top.slice(i + 1)) {
        const p = a.gridPos!;
        const q = b.gridPos!;
        if (p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) overlaps.push(`${a.id} and ${b.id}`);
      }
    });
    assert.deepEqual(overlaps, []);
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
    let scrape: Scrape = { text: '', labelNames: new Map() };
    before(async () => {
      scrape = await scrapeBroker();
      exposed = exposedFamilies(scrape.text);
    });

    it('every token_broker_* metric family the dashboard queries exists', () => {
      const missing = allExpressions().flatMap(({ where, expr }) => familiesIn(expr).filter((family) => !exposed.has(family)).map((family) => `${where}: ${family}`));
      assert.deepEqual(missing, []);
      const used = new Set(allExpressions().flatMap(({ expr }) => familiesIn(expr)));
      assert.ok(used.size >= 12, `the dashboard covers the broker's metrics (${used.size} families)`);
    });

    it('every kill-switch and configuration family the broker exports is on the dashboard', () => {
      const families = [...exposed].filter((family) => /^token_broker_(deny_|denies_|config_)/.test(family)).sort();
      assert.deepEqual(families, [
        'token_broker_config_info',
        'token_broker_config_last_reload_success_timestamp_seconds',
        'token_broker_config_last_reload_successful',
        'token_broker_config_reloads_total',
        'token_broker_denies_active',
        'token_broker_deny_changes_total',
        'token_broker_deny_hits_total',
      ]);
      const used = new Set(rowPanels('Kill switch and configuration').flatMap((panel) => (panel.targets ?? []).flatMap((target) => familiesIn(target.expr ?? ''))));
      assert.deepEqual(families.filter((family) => !used.has(family)), [], 'plotted in the "Kill switch and configuration" row');
      // The denied exchange above is what the row's panels select: the label values exist.
      assert.match(scrape.text, /^token_broker_exchanges_total\{outcome="rejected",reason="denied",issuer="test-cluster"\} 1$/m);
      assert.match(scrape.text, /^token_broker_deny_hits_total\{kind="namespace\+serviceAccount"\} 1$/m);
      assert.match(scrape.text, /^token_broker_denies_active\{source="static"\} 1$/m);
      assert.match(scrape.text, /^token_broker_config_info\{hash="[0-9a-f]+"\} 1$/m);
    });

    it('every label a query groups by or selects on is one its families are declared with (or a target label)', () => {
      const unknown = allExpressions().flatMap(({ where, expr }) => {
        const declared = new Set(familiesIn(expr).flatMap((family) => scrape.labelNames.get(family) ?? []));
        return brokerLabelsIn(expr).filter((label) => !declared.has(label)).map((label) => `${where}: ${label}`);
      });
      assert.deepEqual(unknown, []);
      assert.deepEqual(brokerLabelsIn('sum by (kind) (rate(token_broker_deny_hits_total{job=~"$job", namespace=~"$namespace"}[5m]))'), ['kind'], 'the label parser reads by () and matchers');
    });
  });
});
