import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { lintText } from '../../src/tools/lint/lint-text.js';
import { LINT_RULES, type RuleId } from '../../src/tools/lint/lint-rules.js';
import { DEFAULT_OPTIONS, FIXTURE_CREDENTIALS, FIXTURES_DIR, lintFixture, positions, readFixture } from './lint-fixtures.js';

// Every fixture under test/fixtures/argo-lint mirrors a real template shape (steps, DAGs, script, container and
// HTTP templates, CronWorkflows, parameters, multi-document files). Positions are asserted exactly: they come
// from yaml's node ranges, and each was checked by counting columns in the fixture.

describe('findings in the fixtures, with their exact positions', () => {
  const expected: Record<string, [number, number, RuleId][]> = {
    'static-jwt-script.yaml': [[24, 46, 'literal-jwt']],
    'tyk-key-env.yaml': [[18, 16, 'literal-tyk-key']],
    'named-literals.yaml': [
      [18, 20, 'secret-named-literal'],
      [20, 20, 'secret-named-literal'],
    ],
    'exec-form-and-gateway-secret.yaml': [
      [23, 36, 'literal-bearer-token'],
      [30, 45, 'literal-tyk-key'],
    ],
    'http-templates.yaml': [
      [23, 28, 'literal-jwt'],
      [30, 13, 'secret-credential-to-gateway'],
      [35, 47, 'literal-tyk-key'],
      [38, 14, 'broker-call-without-projected-token'],
    ],
    'parameters.yaml': [
      [10, 16, 'literal-tyk-key'],
      [18, 22, 'literal-jwt'],
      [25, 49, 'literal-bearer-token'],
    ],
    'cron-secret-to-gateway.yaml': [[18, 15, 'secret-credential-to-gateway']],
    'broker-default-token.yaml': [[14, 45, 'broker-call-without-projected-token']],
    'broker-wrong-audience.yaml': [[14, 29, 'broker-token-wrong-audience']],
    'broker-read-once.yaml': [[20, 11, 'broker-token-read-once']],
    'legacy-executor.yaml': [[19, 45, 'legacy-service-account-token']],
    // Only the ClusterWorkflowTemplate (document 2 of 4) has a finding: the ConfigMap's key-shaped value and the
    // Service are other kinds, skipped silently.
    'multi-document.yaml': [[19, 63, 'literal-bearer-token']],
    'invalid/not-yaml.yaml': [[7, 5, 'invalid-yaml']],
    'invalid/tabs.yml': [[4, 1, 'invalid-yaml']],
  };

  for (const [fixture, findings] of Object.entries(expected)) {
    it(fixture, () => assert.deepEqual(positions(lintFixture(fixture)), findings));
  }

  it('covers every fixture file', () => {
    const files = readdirSync(FIXTURES_DIR, { recursive: true, encoding: 'utf8' })
      .map((path) => path.split('\\').join('/'))
      .filter((path) => /\.ya?ml$/.test(path) && !path.startsWith('clean/'))
      .sort();
    assert.deepEqual(files, Object.keys(expected).sort());
  });

  it('counts Argo documents only, and marks unparsable files invalid', () => {
    assert.deepEqual(
      ['multi-document.yaml', 'static-jwt-script.yaml', 'invalid/not-yaml.yaml'].map((name) => {
        const report = lintFixture(name);
        return [report.documents, report.invalid];
      }),
      [
        [2, false],
        [1, false],
        [0, true],
      ],
    );
  });

  it('says what is wrong and what to do in one line each, without repeating the credential', () => {
    const findings = Object.keys(expected).flatMap((fixture) => lintFixture(fixture).findings);
    for (const finding of findings) {
      assert.equal(finding.message.includes('\n') || finding.fix.includes('\n'), false, finding.message);
      for (const credential of FIXTURE_CREDENTIALS) assert.equal(`${finding.message} ${finding.fix}`.includes(credential), false, finding.message);
    }
    const [first] = lintFixture('static-jwt-script.yaml').findings;
    assert.deepEqual(first, {
      file: 'static-jwt-script.yaml',
      line: 24,
      column: 46,
      ruleId: 'literal-jwt',
      severity: 'error',
      message: 'A JWT is written into the script source of template "call-api".',
      fix: 'Mount a projected service-account token and exchange it at the broker for each call instead (--suggest shows the change).',
      template: 'call-api',
      suggestion: undefined,
    });
  });

  it('reports a YAML syntax error with its line and yaml’s message, not a stack trace', () => {
    const [finding] = lintFixture('invalid/not-yaml.yaml').findings;
    assert.equal(finding?.message, 'Not valid YAML: Block collections are not allowed within flow collections.');
  });
});

describe('every rule has a failing and a clean case', () => {
  const clean = readdirSync(`${FIXTURES_DIR}clean`).sort();

  it('the clean fixtures have no findings at all', () => {
    assert.deepEqual(clean, ['broker-exchange.yaml', 'cron.yaml', 'fan-out-dag.yaml', 'http-and-parameters.yaml', 'legacy-safe.yaml', 'python-exchange.yaml']);
    for (const name of clean) {
      const report = lintFixture(`clean/${name}`);
      assert.deepEqual([name, report.documents, report.findings], [name, 1, []]);
    }
  });

  // The clean fixture that contains the near miss of each rule: the same construct, done right.
  const cases: Record<RuleId, { failing: string; clean: string; nearMiss: string }> = {
    'invalid-yaml': { failing: 'invalid/tabs.yml', clean: 'clean/cron.yaml', nearMiss: 'any file that parses' },
    'literal-jwt': { failing: 'static-jwt-script.yaml', clean: 'clean/broker-exchange.yaml', nearMiss: 'Bearer $API_TOKEN obtained per call' },
    'literal-bearer-token': { failing: 'exec-form-and-gateway-secret.yaml', clean: 'clean/fan-out-dag.yaml', nearMiss: 'Bearer $(curl ... broker)' },
    'literal-tyk-key': { failing: 'tyk-key-env.yaml', clean: 'clean/fan-out-dag.yaml', nearMiss: 'CACHE_KEY: catalogue-v3' },
    'secret-named-literal': { failing: 'named-literals.yaml', clean: 'clean/http-and-parameters.yaml', nearMiss: 'api-token parameter without a value' },
    'secret-credential-to-gateway': { failing: 'cron-secret-to-gateway.yaml', clean: 'clean/broker-exchange.yaml', nearMiss: 'PGPASSWORD from a Secret, not sent over HTTP' },
    'broker-call-without-projected-token': { failing: 'broker-default-token.yaml', clean: 'clean/cron.yaml', nearMiss: 'projected token mounted with subPath' },
    'broker-token-wrong-audience': { failing: 'broker-wrong-audience.yaml', clean: 'clean/fan-out-dag.yaml', nearMiss: 'workflow-level projected volume' },
    'broker-token-read-once': { failing: 'broker-read-once.yaml', clean: 'clean/python-exchange.yaml', nearMiss: 'token re-read inside a function per call' },
    'legacy-service-account-token': { failing: 'legacy-executor.yaml', clean: 'clean/legacy-safe.yaml', nearMiss: 'automount false + executor SA, projected token sent' },
  };

  it('lists every rule of the catalogue', () => {
    assert.deepEqual(Object.keys(cases).sort(), LINT_RULES.map((rule) => rule.id).sort());
  });

  for (const [ruleId, { failing, clean: cleanFixture, nearMiss }] of Object.entries(cases)) {
    it(`${ruleId}: ${failing} fails, ${cleanFixture} (${nearMiss}) passes`, () => {
      assert.equal(lintFixture(failing).findings.some((finding) => finding.ruleId === ruleId), true);
      assert.deepEqual(lintFixture(cleanFixture).findings, []);
    });
  }
});

describe('settings', () => {
  it('--audience decides which projected token is right', () => {
    assert.deepEqual(positions(lintFixture('broker-wrong-audience.yaml', { audience: 'vault' })), []);
    // broker-exchange sends the file through $TOKEN_FILE; the audience of its volume is reported.
    assert.deepEqual(positions(lintFixture('clean/broker-exchange.yaml', { audience: 'vault' })), [[20, 49, 'broker-token-wrong-audience']]);
    assert.deepEqual(positions(lintFixture('clean/legacy-safe.yaml', { audience: 'vault' })), [[17, 49, 'broker-token-wrong-audience']]);
  });

  it('--broker-url makes any mention of the broker a call', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Workflow',
      'metadata: {generateName: x-}',
      'spec:',
      '  templates:',
      '    - name: call',
      '      container:',
      '        image: curlimages/curl:8.10.1',
      '        command: [sh, -c]',
      '        args: ["curl -sf -X POST https://broker.internal.example/v1/exchange -o /tmp/t"]',
      '',
    ].join('\n');
    assert.deepEqual(positions(lintText(text, 'x.yaml', DEFAULT_OPTIONS)), []);
    assert.deepEqual(positions(lintText(text, 'x.yaml', { ...DEFAULT_OPTIONS, brokerUrl: 'https://broker.internal.example' })), [
      [10, 34, 'broker-call-without-projected-token'],
    ]);
  });

  it('stays silent about mounts a podSpecPatch may add', () => {
    const text = readFixture('broker-default-token.yaml').replace(
      '    - name: settle\n',
      '    - name: settle\n      podSpecPatch: \'{"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"audience": "tyk-token-broker", "path": "token"}}]}}]}\'\n',
    );
    assert.deepEqual(positions(lintText(text, 'x.yaml', DEFAULT_OPTIONS)), []);
  });

  it('reports a step that mounts a legacy token Secret and sends it, whatever automountServiceAccountToken says', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Workflow',
      'metadata: {generateName: legacy-}',
      'spec:',
      '  volumes:',
      '    - {name: runner-token, secret: {secretName: argo-runner.service-account-token}}',
      '  templates:',
      '    - name: call',
      '      container:',
      '        image: curlimages/curl:8.10.1',
      '        command: [sh, -c]',
      '        args:',
      '          - >-',
      '            curl -sf -X POST https://token-broker.platform.svc.cluster.local/token',
      '            -H "Authorization: Bearer $(cat /var/run/secrets/runner/token)"',
      '        volumeMounts: [{name: runner-token, mountPath: /var/run/secrets/runner}]',
      '',
    ].join('\n');
    const findings = lintText(text, 'x.yaml', DEFAULT_OPTIONS).findings;
    assert.deepEqual(
      findings.map((finding) => [finding.line, finding.column, finding.ruleId, finding.message]),
      [[15, 45, 'legacy-service-account-token', 'Template "call" sends /var/run/secrets/runner/token to the broker, but /var/run/secrets/runner/token is a legacy Secret-based token; the broker refuses legacy tokens.']],
    );
  });

  it('reports a shared workflow-level volume with the wrong audience once, for all the steps that send it', () => {
    const step = (name: string): string[] => [
      `    - name: ${name}`,
      '      container:',
      '        image: curlimages/curl:8.10.1',
      '        command: [sh, -c]',
      '        args: ["curl -sf https://token-broker.platform.svc.cluster.local/token -H \\"Authorization: Bearer $(cat /t/token)\\""]',
      '        volumeMounts: [{name: t, mountPath: /t}]',
    ];
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: WorkflowTemplate',
      'metadata: {name: shared}',
      'spec:',
      '  volumes:',
      '    - {name: t, projected: {sources: [{serviceAccountToken: {audience: vault, path: token}}]}}',
      '  templates:',
      ...step('one'),
      ...step('two'),
      '',
    ].join('\n');
    assert.deepEqual(positions(lintText(text, 'x.yaml', DEFAULT_OPTIONS)), [[6, 72, 'broker-token-wrong-audience']]);
  });

  it('reads inline step templates and containerSet, init and sidecar containers', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: WorkflowTemplate',
      'metadata: {name: inline}',
      'spec:',
      '  templates:',
      '    - name: main',
      '      steps:',
      '        - - name: inline-step',
      '            inline:',
      '              container:',
      '                image: alpine',
      '                env: [{name: GATEWAY_TOKEN, value: "s3cr3t-value-1"}]',
      '    - name: set',
      '      containerSet:',
      '        containers:',
      '          - name: a',
      '            image: alpine',
      '            env: [{name: DB_PASSWORD, value: "pw-in-set"}]',
      '      sidecars:',
      '        - name: proxy',
      '          image: envoy',
      '          env: [{name: ADMIN_TOKEN, value: "pw-in-sidecar"}]',
      '',
    ].join('\n');
    assert.deepEqual(
      lintText(text, 'x.yaml', DEFAULT_OPTIONS).findings.map((finding) => [finding.line, finding.column, finding.template]),
      [
        [12, 52, 'inline-step'],
        [18, 46, 'set'],
        [22, 44, 'set'],
      ],
    );
  });
});
