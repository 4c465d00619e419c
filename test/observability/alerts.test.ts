import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { redisUnavailableReason, startRedisServer } from '../support/redis-server.js';
import { startStandInKubernetes } from '../fakes/stand-in-kubernetes.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REASON_CODES } from '../../src/server/errors.js';
import { recordServingCertificate } from '../../src/server/observability/metrics.js';

/**
 * The alert rules are code: promtool validates and unit-tests them, every alert has a runbook section, and every
 * metric and label an alert keys on is checked against what a real broker exports, so a renamed metric or label
 * breaks this test instead of silently muting an alert.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALERTS = 'deploy/prometheus/alerts.yaml';
const ALERT_TESTS = 'deploy/prometheus/alerts.test.yaml';
const RUNBOOK = 'docs/runbook.md';
/** The one base of every runbook_url, declared in the header of alerts.yaml (`# RUNBOOK_BASE_URL: ...`). */
const RUNBOOK_BASE_URL = (() => {
  const declared = /^# RUNBOOK_BASE_URL: (\S+)$/m.exec(readFileSync(fileURLToPath(new URL('../../deploy/prometheus/alerts.yaml', import.meta.url)), 'utf8'))?.[1];
  if (declared === undefined) throw new Error('alerts.yaml declares no # RUNBOOK_BASE_URL:');
  return declared;
})();

// ---- promtool: required in CI, skipped with a reason on a developer machine without it ----

function promtoolSkip(): string | false {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (found.status === 0) return false;
  // With CI=true the tests run and fail on the missing binary: .ci/run must install it.
  if (process.env.CI === 'true') return false;
  return 'promtool is not on PATH (install Debian\'s prometheus package to run the alert rule tests)';
}

function redisSkip(): string | false {
  try {
    return redisUnavailableReason() ?? false;
  } catch {
    return false; // CI=true without redis-server: run, and fail loudly when it cannot start
  }
}

const PROMTOOL_SKIP = promtoolSkip();
const REDIS_SKIP = redisSkip();

function promtool(args: readonly string[], input?: string) {
  const result = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000, ...(input !== undefined && { input }) });
  assert.equal(result.error, undefined, `promtool ${args.join(' ')} could not run: ${String(result.error)}`);
  return result;
}

// ---- the rule file ----

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

interface AlertRuleTest {
  readonly alertname: string;
  readonly exp_alerts?: readonly unknown[];
}

function readText(path: string): string {
  return readFileSync(new URL(path, new URL('../../', import.meta.url)), 'utf8');
}

function alertRules(): AlertRule[] {
  const doc = parse(readText(ALERTS)) as { groups: { name: string; rules: AlertRule[] }[] };
  return doc.groups.flatMap((group) => group.rules);
}

function ruleTests(): AlertRuleTest[] {
  const doc = parse(readText(ALERT_TESTS)) as { tests: { alert_rule_test?: AlertRuleTest[] }[] };
  return doc.tests.flatMap((test) => test.alert_rule_test ?? []);
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function markdownAnchors(markdown: string): string[] {
  return [...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
    m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-'),
  );
}

// ---- a real scrape ----

interface Family {
  readonly type: string;
  readonly help: string | undefined;
  readonly samples: Record<string, string>[];
}

/** Parses the text exposition format into families (histogram samples grouped under their family). */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family & { help: string | undefined }>();
  const helps = new Map<string, string>();
  for (const line of text.split('\n')) {
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    if (help) helps.set(help[1]!, help[2]!);
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, { type: type[2]!, help: helps.get(type[1]!), samples: [] });
  }
  for (const line of text.split('\n')) {
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const family = familyOf(sample[1]!, families);
    assert.ok(family !== undefined, `sample ${sample[1]} belongs to no # TYPE family`);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    families.get(family)!.samples.push(labels);
  }
  return families;
}

/** The family a series name belongs to: itself, or a histogram/summary for _bucket, _sum and _count. */
function familyOf(name: string, families: ReadonlyMap<string, Family>): string | undefined {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = name.slice(0, -suffix.length);
    const type = families.get(base)?.type;
    if (name.endsWith(suffix) && (type === 'histogram' || type === 'summary')) return base;
  }
  return undefined;
}

async function waitForRedisUp(h: Harness): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const metrics = await h.http.get('/metrics').expect(200);
    if (/^token_broker_redis_up 1$/m.test(metrics.text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail('token_broker_redis_up did not become 1 within 5 s');
}

/**
 * A broker with a real Redis after an issued, a cached and a rejected (expired) exchange, so that the labelled
 * series exist: what Prometheus would scrape from a working replica.
 */
async function scrapeBroker(): Promise<string> {
  const redis = await startRedisServer();
  // The cluster's API, for pod binding: its request counter is what TokenBrokerKubernetesForbidden reads.
  const cluster = await startStandInKubernetes();
  const dir = await mkdtemp(join(tmpdir(), 'tb-alerts-'));
  let h: Harness | undefined;
  try {
    const kubeconfig = await cluster.writeKubeconfig(dir);
    h = await startHarness({ config: () => ({ cache: { redis: { url: redis.url } }, kubernetes: { kubeconfig, podBinding: 'enforce' } }) });
    await waitForRedisUp(h);
    const step = cluster.putPod('payments', 'orders-sync-x7k2p-call-api-3149217812', { serviceAccountName: 'argo-runner' });
    const subject = await h.issuer.projectedToken({ podName: step.metadata.name, podUid: step.metadata.uid });
    const issued = await h.exchange(subject);
    assert.equal(issued.status, 200);
    const cached = await h.exchange(subject);
    assert.equal(cached.status, 200);
    assert.equal(cached.body.access_token, issued.body.access_token);
    const expired = await h.exchange(await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) }));
    assert.equal(expired.status, 400);
    assert.equal(expired.body.reason, 'expired');
    // The broker's RBAC loses `get pods`: the API answers 403, the exchange 500 kubernetes_forbidden.
    cluster.setForbidden(['pods']);
    const other = cluster.putPod('payments', 'orders-sync-x7k2p-call-api-1000000001', { serviceAccountName: 'argo-runner' });
    const forbidden = await h.exchange(await h.issuer.projectedToken({ podName: other.metadata.name, podUid: other.metadata.uid }));
    assert.equal(forbidden.status, 500);
    assert.equal(forbidden.body.reason, 'kubernetes_forbidden');
    // What serve records when it listens with server.tls (test/tls/serve-tls.test.ts drives the real listener).
    recordServingCertificate(h.broker.metrics, true, { notBefore: Date.now() - 86_400_000, notAfter: Date.now() + 89 * 86_400_000 });
    const text = (await h.http.get('/metrics').expect(200)).text;
    for (const series of [
      'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster"} 1',
      'token_broker_exchanges_total{outcome="cached",reason="ok",issuer="test-cluster"} 1',
      'token_broker_exchanges_total{outcome="rejected",reason="expired",issuer="test-cluster"} 1',
      'token_broker_exchanges_total{outcome="error",reason="kubernetes_forbidden",issuer="test-cluster"} 1',
      'token_broker_kubernetes_requests_total{resource="pods",code="403"} 1',
    ]) {
      assert.ok(text.split('\n').includes(series), `the scrape has ${series}`);
    }
    // prom-client's default process metrics keep their standard names, so Node.js dashboards find them.
    for (const family of ['process_cpu_seconds_total', 'process_start_time_seconds', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(text.includes(`\n# TYPE ${family} `), `the scrape has ${family}`);
    }
    assert.doesNotMatch(text, /^(?:# (?:HELP|TYPE) )?token_broker_(?:process|nodejs)_/m);
    return text;
  } finally {
    await h?.close();
    await redis.stop();
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- what the alert expressions refer to ----

interface Selector {
  readonly metric: string;
  readonly matchers: readonly { readonly label: string; readonly op: string; readonly value: string }[];
}

/** Every `token_broker_*` selector in a PromQL expression, with its label matchers. */
function selectorsOf(expr: string): Selector[] {
  return [...expr.matchAll(/\b(token_broker_[a-zA-Z0-9_]+)(?:\s*\{([^}]*)\})?/g)].map((m) => ({
    metric: m[1]!,
    matchers: [...(m[2] ?? '').matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((x) => ({ label: x[1]!, op: x[2]!, value: x[3]! })),
  }));
}

/** Label values the broker can emit, from its source of truth (errors.ts) and the metric catalogue. */
const KNOWN_LABEL_VALUES: Record<string, Record<string, readonly string[]>> = {
  token_broker_exchanges_total: { outcome: ['issued', 'cached', 'rejected', 'error'], reason: [...REASON_CODES, 'ok'] },
  token_broker_jwks_refresh_total: { result: ['success', 'error'] },
  token_broker_config_reloads_total: { result: ['success', 'invalid', 'refused'] },
  token_broker_cache_requests_total: { result: ['hit', 'miss', 'stale', 'error'] },
  token_broker_signing_key_info: { state: ['pending', 'active', 'retiring'] },
  // HTTP statuses the API server sends the broker (and 'error' when there was none); 401 and 403 are the refusals.
  token_broker_kubernetes_requests_total: { code: ['200', '201', '401', '403', '404', '429', '500', '503', 'error'] },
};

/** The values a matcher asks for: one for `=`, the alternatives of a plain `a|b|c` regex; [] otherwise. */
function matchedValues(op: string, value: string): string[] {
  if (op === '=') return [value];
  if (op === '=~' && /^[\w/.-]+(\|[\w/.-]+)*$/.test(value)) return value.split('|');
  return [];
}

/** prom-client's default gauges that end in _total are removed by the broker (src/server/observability/metrics.ts). */
const PROM_CLIENT_DEFAULT_FINDINGS: string[] = [];

describe('deploy/prometheus/alerts.yaml', () => {
  const rules = alertRules();
  const names = rules.map((rule) => rule.alert);

  it('is one group named token-broker with the alerts SREs key on', () => {
    const doc = parse(readText(ALERTS)) as { groups: { name: string }[] };
    assert.deepEqual(
      doc.groups.map((group) => group.name),
      ['token-broker'],
    );
    assert.deepEqual([...names].sort(), [
      'TokenBrokerClockSkew',
      'TokenBrokerClockSkewRejections',
      'TokenBrokerConfigReloadFailing',
      'TokenBrokerExpiredSubjectTokens',
      'TokenBrokerHighErrorRatio',
      'TokenBrokerHighLatencyP99',
      'TokenBrokerHighRejectRatio',
      'TokenBrokerJwksRefreshFailing',
      'TokenBrokerKubernetesForbidden',
      'TokenBrokerNoActiveSigningKey',
      'TokenBrokerRedisDown',
      'TokenBrokerSigningKeyActivatedTooSoon',
      'TokenBrokerSigningKeyDroppedTooSoon',
      'TokenBrokerSigningKeysUnreadable',
      'TokenBrokerTlsCertificateExpiresSoon',
      'TokenBrokerTlsCertificateNotRenewed',
      'TokenBrokerTlsFilesUnreadable',
    ]);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
  });

  it('promtool check rules: SUCCESS', { skip: PROMTOOL_SKIP }, () => {
    const result = promtool(['check', 'rules', ALERTS]);
    assert.equal(result.stderr, '');
    assert.equal(result.stdout, `Checking ${ALERTS}\n  SUCCESS: ${rules.length} rules found\n\n`);
    assert.equal(result.status, 0);
  });

  it('promtool test rules: every unit test in alerts.test.yaml passes', { skip: PROMTOOL_SKIP }, () => {
    const result = promtool(['test', 'rules', ALERT_TESTS]);
    assert.equal(result.stdout, `Unit Testing:  ${ALERT_TESTS}\n  SUCCESS\n\n`, result.stdout + result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(result.status, 0);
  });

  it('every alert has a firing and a not-firing unit test, and the tests name no other alert', () => {
    const tests = ruleTests();
    for (const name of names) {
      const own = tests.filter((test) => test.alertname === name);
      assert.ok(own.some((test) => (test.exp_alerts ?? []).length > 0), `${name} has a test where it fires`);
      assert.ok(own.some((test) => (test.exp_alerts ?? []).length === 0), `${name} has a test where it does not fire`);
    }
    for (const test of tests) assert.ok(names.includes(test.alertname), `alerts.test.yaml tests unknown alert ${test.alertname}`);
  });

  it('every alert has for, a severity, a summary, a description and a runbook_url to its own runbook section', () => {
    const anchors = markdownAnchors(readText(RUNBOOK));
    for (const rule of rules) {
      assert.match(rule.for ?? '0s', /^\d+[smh]$/, `${rule.alert}: for`);
      assert.ok(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity is warning or critical`);
      assert.ok((rule.annotations?.summary ?? '').length > 0, `${rule.alert}: summary`);
      assert.match(rule.annotations?.description ?? '', /Look first at/, `${rule.alert}: the description says where to look first`);
      assert.equal(rule.annotations?.runbook_url, `${RUNBOOK_BASE_URL}#${rule.alert.toLowerCase()}`, `${rule.alert}: runbook_url`);
      assert.ok(anchors.includes(rule.alert.toLowerCase()), `${RUNBOOK} has a section #${rule.alert.toLowerCase()}`);
    }
    const pending = rules.filter((rule) => rule.for === undefined).map((rule) => rule.alert);
    // A post-hoc alert: the damage window (Tyk's cache) is shorter than any useful `for`.
    assert.deepEqual(pending, ['TokenBrokerSigningKeyActivatedTooSoon']);
  });

  it('runbook_url is absolute (https) on the declared base, and replacing the base replaces every one', () => {
    assert.match(RUNBOOK_BASE_URL, /^https:\/\/[^/]+\/.+\/docs\/runbook\.md$/);
    const replaced = readText(ALERTS).split(RUNBOOK_BASE_URL).join('https://runbooks.internal/docs/runbook.md');
    for (const rule of rules) assert.ok(replaced.includes(`runbook_url: https://runbooks.internal/docs/runbook.md#${rule.alert.toLowerCase()}`), rule.alert);
    assert.equal(replaced.includes('runbook_url: docs/'), false, 'no relative runbook_url is left');
  });

  it('the runbook starts with "Timing first" and has one section per alert, each saying what to check and how to fix', () => {
    const runbook = readText(RUNBOOK);
    const sections = [...runbook.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
    assert.equal(sections[0], 'Timing first');
    // Procedures no alert points at (an operator starts them): named here, so nothing else slips in.
    const procedures = ['Kill switch: stopping a workload during an incident'];
    assert.deepEqual(sections.slice(1).filter((name) => !procedures.includes(name)).sort(), [...names].sort());
    for (const procedure of procedures) assert.ok(sections.includes(procedure), `the runbook has the procedure "${procedure}"`);
    for (const name of names) {
      const body = runbook.split(`## ${name}\n`)[1]!.split(/^## /m)[0]!;
      for (const part of ['**Meaning.**', '**Check first.**', '**Likely causes.**', '**Fix.**']) {
        assert.ok(body.includes(part), `${name}: ${part}`);
      }
    }
    assert.match(runbook, /240 s/, 'Timing first explains Tyk\'s JWKS cache');
    assert.match(runbook, /never refetches on an\s+unknown `kid`/);
  });

  describe('against a real scrape of the broker', { skip: REDIS_SKIP }, () => {
    let scrape = '';
    let families = new Map<string, Family>();
    before(async () => {
      scrape = await scrapeBroker();
      families = parseExposition(scrape);
    });

    it('every metric family, label and label value the alert expressions use exists', () => {
      const problems: string[] = [];
      for (const rule of rules) {
        for (const selector of selectorsOf(rule.expr)) {
          const family = familyOf(selector.metric, families);
          if (family === undefined) {
            problems.push(`${rule.alert}: ${selector.metric} is not in the scrape`);
            continue;
          }
          const samples = families.get(family)!.samples;
          for (const { label, op, value } of selector.matchers) {
            if (!samples.some((labels) => label in labels)) {
              problems.push(`${rule.alert}: ${selector.metric} has no label ${label}`);
              continue;
            }
            const known = KNOWN_LABEL_VALUES[family]?.[label] ?? samples.map((labels) => labels[label]!);
            for (const wanted of matchedValues(op, value)) {
              if (!known.includes(wanted)) problems.push(`${rule.alert}: ${selector.metric}{${label}="${wanted}"} can never exist`);
            }
          }
        }
      }
      assert.deepEqual(problems, []);
    });

    it('every metric the annotations tell SREs to look at exists', () => {
      const missing: string[] = [];
      for (const rule of rules) {
        for (const text of Object.values(rule.annotations ?? {})) {
          for (const { metric } of selectorsOf(text)) {
            if (familyOf(metric, families) === undefined) missing.push(`${rule.alert}: ${metric}`);
          }
        }
      }
      assert.deepEqual(missing, []);
    });

    it('promtool check metrics: HELP and TYPE for every family, no lint problems of the broker\'s own', { skip: PROMTOOL_SKIP }, () => {
      const undocumented = [...families].filter(([, family]) => family.help === undefined || family.help === '').map(([name]) => name);
      assert.deepEqual(undocumented, []);

      const full = promtool(['check', 'metrics'], scrape);
      assert.equal(full.stdout, '');
      const findings = full.stderr.split('\n').filter((line) => line !== '');
      const unexpected = findings.filter((line) => !PROM_CLIENT_DEFAULT_FINDINGS.includes(line));
      assert.deepEqual(unexpected, []);
      assert.equal(full.status, findings.length === 0 ? 0 : 3);

      // Without prom-client's three misnamed default gauges, promtool has nothing to report.
      const flagged = new Set(PROM_CLIENT_DEFAULT_FINDINGS.map((line) => line.split(' ')[0]!));
      const own = scrape
        .split('\n')
        .filter((line) => !flagged.has(/^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1] ?? ''))
        .join('\n');
      const clean = promtool(['check', 'metrics'], own);
      assert.equal(clean.stdout + clean.stderr, '');
      assert.equal(clean.status, 0);
    });
  });
});
