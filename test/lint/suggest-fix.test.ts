import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments, parseDocument } from 'yaml';
import { lintText } from '../../src/tools/lint/lint-text.js';
import { applyFixPlan } from '../../src/tools/lint/suggest-fix.js';
import { DEFAULT_OPTIONS, FIXTURE_JWT, OPAQUE_TOKEN, TYK_KEY, lintFixture, readFixture } from './lint-fixtures.js';

/** Applies a unified diff to `text` the way `patch -p1` would, checking every context and removed line. */
function applyDiff(text: string, diff: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let cursor = 0;
  const diffLines = diff.replace(/\n$/, '').split('\n');
  assert.match(diffLines[0] ?? '', /^--- a\//);
  assert.match(diffLines[1] ?? '', /^\+\+\+ b\//);
  for (let i = 2; i < diffLines.length; ) {
    const header = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@$/.exec(diffLines[i] ?? '');
    assert.ok(header, `hunk header expected, got ${diffLines[i]}`);
    const oldStart = Number(header[1]) - (header[2] === '0' ? 0 : 1);
    out.push(...lines.slice(cursor, oldStart));
    cursor = oldStart;
    for (i += 1; i < diffLines.length && !(diffLines[i] ?? '').startsWith('@@'); i += 1) {
      const line = diffLines[i] ?? '';
      const body = line.slice(1);
      if (line.startsWith('\\')) continue; // "\ No newline at end of file": this applier keeps line breaks as split
      if (line.startsWith('+')) out.push(body);
      else {
        assert.equal(lines[cursor], body, `line ${cursor + 1} of the original differs from the diff`);
        if (line.startsWith(' ')) out.push(body);
        cursor += 1;
      }
    }
  }
  out.push(...lines.slice(cursor));
  return out.join('\n');
}

/**
 * The added diff lines that mount the projected broker token: the container's volumeMounts key at column
 * `container`, the pod's volumes key at column `pod`, and sequence items indented `sequenceIndent` past their
 * key (0 in an indentless file). The same block in every file; only the file's indentation differs.
 */
function addedTokenVolume({ container, pod, sequenceIndent }: { container: number; pod: number; sequenceIndent: number }): string[] {
  const at = (column: number, text: string) => `+${' '.repeat(column)}${text}`;
  const mount = container + sequenceIndent;
  const volume = pod + sequenceIndent;
  const source = volume + 4 + sequenceIndent;
  return [
    at(container, 'volumeMounts:'),
    at(mount, '- name: broker-token'),
    at(mount + 2, 'mountPath: /var/run/secrets/token-broker'),
    at(mount + 2, 'readOnly: true'),
    at(pod, 'volumes:'),
    at(volume, '- name: broker-token'),
    at(volume + 2, 'projected:'),
    at(volume + 4, 'sources:'),
    at(source, '- serviceAccountToken:'),
    at(source + 4, 'audience: tyk-token-broker'),
    at(source + 4, 'expirationSeconds: 600'),
    at(source + 4, 'path: token'),
  ];
}

function suggestions(fixture: string): { ruleId: string; suggestion: string | undefined }[] {
  return lintFixture(fixture, { suggest: true }).findings.map(({ ruleId, suggestion }) => ({ ruleId, suggestion }));
}

function comments(text: string): string[] {
  return text.split('\n').filter((line) => /(^|\s)#/.test(line) && !line.includes('$(')).map((line) => line.slice(line.indexOf('#')));
}

describe('--suggest: the diff of a mechanical fix', () => {
  it('replaces a literal JWT with a per-call exchange and adds the projected token (exact diff)', () => {
    const [finding] = lintFixture('static-jwt-script.yaml', { suggest: true }).findings;
    assert.equal(
      finding?.suggestion,
      [
        '--- a/static-jwt-script.yaml',
        '+++ b/static-jwt-script.yaml',
        '@@ -21,7 +21,19 @@',
        '         source: |',
        '           set -eu',
        '           # the token below was copied from the dashboard (expires 2026)',
        `-          curl -sf -H "Authorization: Bearer ${FIXTURE_JWT}" \\`,
        '+          curl -sf -H "Authorization: Bearer $(curl -sS --fail -X POST https://token-broker.platform.svc.cluster.local/token -H "Authorization: Bearer $(cat /var/run/secrets/token-broker/token)" -H \'Accept: text/plain\')" \\',
        '             https://gateway.example.com/orders/',
        '         resources:',
        '           limits: {cpu: 100m, memory: 64Mi}   # keep the step small',
        ...addedTokenVolume({ container: 8, pod: 6, sequenceIndent: 2 }),
        '',
      ].join('\n'),
    );
  });

  it('drops an environment variable that held a key, in an indentless file, with the comment that described it (exact diff)', () => {
    const [finding] = lintFixture('tyk-key-env.yaml', { suggest: true, brokerUrl: 'https://tb.example.com/', suggestedBrokerUrl: 'https://tb.example.com/' }).findings;
    assert.equal(
      finding?.suggestion,
      [
        '--- a/tyk-key-env.yaml',
        '+++ b/tyk-key-env.yaml',
        '@@ -11,10 +11,19 @@',
        '       command: ["/bin/sh", "-c"]',
        '       args:',
        '       - |',
        '-        curl -sf -H "Authorization: $TYK_API_KEY" https://gateway.example.com/ledger/export > /tmp/export.json',
        '+        curl -sf -H "Authorization: $(curl -sS --fail -X POST https://tb.example.com/token -H "Authorization: Bearer $(cat /var/run/secrets/token-broker/token)" -H \'Accept: text/plain\')" https://gateway.example.com/ledger/export > /tmp/export.json',
        '       env:',
        '-      # static key from the API owner, rotate yearly',
        '-      - name: TYK_API_KEY',
        `-        value: ${TYK_KEY}`,
        '       - name: EXPORT_FORMAT',
        '         value: json',
        ...addedTokenVolume({ container: 6, pod: 4, sequenceIndent: 0 }),
        '',
      ].join('\n'),
    );
  });

  it('changes only the audience and keeps the comment on its line', () => {
    const [finding] = lintFixture('broker-wrong-audience.yaml', { suggest: true }).findings;
    const fixed = applyDiff(readFixture('broker-wrong-audience.yaml'), finding?.suggestion ?? '');
    assert.match(fixed, /^ {18}audience: tyk-token-broker {3}# copied from the Vault step$/m);
    assert.equal(fixed.split('\n').length, readFixture('broker-wrong-audience.yaml').split('\n').length);
  });

  it('offers a diff exactly for the mechanical fixes', () => {
    const table: Record<string, [string, boolean][]> = {
      'static-jwt-script.yaml': [['literal-jwt', true]],
      'tyk-key-env.yaml': [['literal-tyk-key', true]],
      'cron-secret-to-gateway.yaml': [['secret-credential-to-gateway', true]],
      'multi-document.yaml': [['literal-bearer-token', true]],
      'broker-default-token.yaml': [['broker-call-without-projected-token', true]],
      'broker-wrong-audience.yaml': [['broker-token-wrong-audience', true]],
      'legacy-executor.yaml': [['legacy-service-account-token', true]],
      // Python and exec-form curl run no shell; a Gateway secret is not replaced by a broker token; HTTP
      // templates cannot mount a token; parameters and the expiry trap need a human.
      'named-literals.yaml': [
        ['secret-named-literal', false],
        ['secret-named-literal', false],
      ],
      'exec-form-and-gateway-secret.yaml': [
        ['literal-bearer-token', false],
        ['literal-tyk-key', false],
      ],
      'http-templates.yaml': [
        ['literal-jwt', false],
        ['secret-credential-to-gateway', false],
        ['literal-tyk-key', false],
        ['broker-call-without-projected-token', false],
      ],
      'parameters.yaml': [
        ['literal-tyk-key', false],
        ['literal-jwt', false],
        ['literal-bearer-token', false],
      ],
      'broker-read-once.yaml': [['broker-token-read-once', false]],
    };
    for (const [fixture, expected] of Object.entries(table)) {
      assert.deepEqual(
        suggestions(fixture).map(({ ruleId, suggestion }) => [ruleId, suggestion !== undefined]),
        expected,
        fixture,
      );
    }
  });

  it('each diff applies, keeps every comment and every untouched line, parses, and fixes its finding', () => {
    const fixable = ['static-jwt-script.yaml', 'tyk-key-env.yaml', 'cron-secret-to-gateway.yaml', 'multi-document.yaml', 'broker-default-token.yaml', 'broker-wrong-audience.yaml', 'legacy-executor.yaml'];
    for (const fixture of fixable) {
      const original = readFixture(fixture);
      const [{ ruleId, suggestion } = { ruleId: '', suggestion: undefined }] = suggestions(fixture);
      const fixed = applyDiff(original, suggestion ?? '');
      const removed = (suggestion ?? '').split('\n').filter((line) => line.startsWith('-') && !line.startsWith('---')).map((line) => line.slice(1));
      const keptComments = comments(original).filter((comment) => !removed.some((line) => line.endsWith(comment)));
      assert.deepEqual(comments(fixed).filter((comment) => keptComments.includes(comment)), keptComments, fixture);
      for (const line of original.split('\n')) {
        if (!removed.includes(line)) assert.equal(fixed.split('\n').includes(line), true, `${fixture}: lost "${line}"`);
      }
      const documents = parseAllDocuments(fixed);
      assert.equal(Array.isArray(documents) && documents.every((document) => document.errors.length === 0), true, fixture);
      const after = lintText(fixed, fixture, DEFAULT_OPTIONS).findings.map((finding) => finding.ruleId);
      assert.deepEqual(after, [], `${fixture}: ${ruleId} still reported after the fix`);
    }
  });
});

describe('--suggest leaves a Gateway secret alone', () => {
  it('a key-shaped GATEWAY_AUTH sent as x-tyk-authorization is found, but not replaced by a broker token', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Workflow',
      'metadata: {generateName: gw-}',
      'spec:',
      '  templates:',
      '    - name: call',
      '      container:',
      '        image: curlimages/curl:8.10.1',
      '        command: [sh, -c]',
      '        args: [\'curl -sf -H "x-tyk-authorization: $GATEWAY_AUTH" https://gw.example.com/tyk/keys\']',
      '        env:',
      '          - name: GATEWAY_AUTH',
      '            value: "eb7c0a3f9d2e4b1c8a6f5e4d3c2b1a09"',
      '',
    ].join('\n');
    const findings = lintText(text, 'x.yaml', { ...DEFAULT_OPTIONS, suggest: true }).findings;
    assert.deepEqual(findings.map((finding) => [finding.line, finding.ruleId, finding.suggestion]), [[13, 'literal-tyk-key', undefined]]);
  });
});

describe('splicing edits into flow style and odd layouts', () => {
  const lint = (text: string) => lintText(text, 'x.yaml', { ...DEFAULT_OPTIONS, suggest: true }).findings;

  it('adds to flow mappings and flow sequences in place', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Workflow',
      'metadata: {generateName: flow-}',
      'spec:',
      '  templates:',
      '    - name: call',
      '      volumes: [{name: scratch, emptyDir: {}}]  # scratch space',
      `      container: {image: alpine, command: [sh, -c], args: ["curl -H 'Authorization: Bearer ${OPAQUE_TOKEN}' https://gw.example.com/"]}`,
      '',
    ].join('\n');
    const [finding] = lint(text);
    const fixed = applyDiff(text, finding?.suggestion ?? '');
    assert.equal(
      fixed.split('\n')[6],
      '      volumes: [{name: scratch, emptyDir: {}}, { name: broker-token, projected: { sources: [ { serviceAccountToken: { audience: tyk-token-broker, expirationSeconds: 600, path: token } } ] } }]  # scratch space',
    );
    assert.equal(
      fixed.split('\n')[7],
      `      container: {image: alpine, command: [sh, -c], args: ["curl -H 'Authorization: Bearer '\\"$(curl -sS --fail -X POST https://token-broker.platform.svc.cluster.local/token -H \\"Authorization: Bearer $(cat /var/run/secrets/token-broker/token)\\" -H 'Accept: text/plain')\\"'' https://gw.example.com/"], volumeMounts: [ { name: broker-token, mountPath: /var/run/secrets/token-broker, readOnly: true } ]}`,
    );
    assert.deepEqual(parseDocument(fixed).getIn(['spec', 'templates', 0, 'container', 'args', 0]), `curl -H 'Authorization: Bearer '"$(curl -sS --fail -X POST https://token-broker.platform.svc.cluster.local/token -H "Authorization: Bearer $(cat /var/run/secrets/token-broker/token)" -H 'Accept: text/plain')"'' https://gw.example.com/`);
  });

  it('adds a missing audience to a projected token', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Workflow',
      'metadata: {generateName: audience-}',
      'spec:',
      '  templates:',
      '    - name: call',
      '      volumes:',
      '        - name: t',
      '          projected:',
      '            sources:',
      '              - serviceAccountToken:',
      '                  path: token',
      '      container:',
      '        image: alpine',
      '        command: [sh, -c]',
      '        args:',
      '          - curl -sf https://token-broker.platform.svc.cluster.local/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange --data-urlencode subject_token@/t/token',
      '        volumeMounts: [{name: t, mountPath: /t}]',
      '',
    ].join('\n');
    const [finding] = lint(text);
    assert.equal(finding?.ruleId, 'broker-token-wrong-audience');
    assert.equal(finding?.message, 'Template "call" sends the projected token of volume t to the broker, but its audience is the API server\'s (no audience set), not "tyk-token-broker".');
    const fixed = applyDiff(text, finding?.suggestion ?? '');
    assert.deepEqual(fixed.split('\n').slice(10, 13), ['              - serviceAccountToken:', '                  path: token', '                  audience: tyk-token-broker']);
  });

  it('re-stringifies a plain scalar it changes as a double-quoted one', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Workflow',
      'metadata: {generateName: plain-}',
      'spec:',
      '  templates:',
      '    - name: call',
      '      container:',
      '        image: alpine',
      '        command: [sh, -c]',
      '        args:',
      `          - curl -sf --oauth2-bearer ${OPAQUE_TOKEN} https://gw.example.com/  # plain`,
      '',
    ].join('\n');
    const [finding] = lint(text);
    assert.equal(finding?.ruleId, 'literal-bearer-token');
    const fixed = applyDiff(text, finding?.suggestion ?? '');
    assert.equal(
      fixed.split('\n')[10],
      '          - "curl -sf --oauth2-bearer \\"$(curl -sS --fail -X POST https://token-broker.platform.svc.cluster.local/token -H \\"Authorization: Bearer $(cat /var/run/secrets/token-broker/token)\\" -H \'Accept: text/plain\')\\" https://gw.example.com/"  # plain',
    );
  });

  it('keeps CRLF line endings, and a file without a final line break gets exactly one', () => {
    const crlf = readFixture('static-jwt-script.yaml').replace(/\n/g, '\r\n');
    const [crlfFinding] = lint(crlf);
    const fixedCrlf = applyDiff(crlf, crlfFinding?.suggestion ?? '');
    assert.equal(fixedCrlf.split('\n').slice(0, -1).every((line) => line.endsWith('\r')), true);
    assert.deepEqual(lintText(fixedCrlf, 'x.yaml', DEFAULT_OPTIONS).findings, []);

    const unterminated = readFixture('static-jwt-script.yaml').trimEnd();
    const [finding] = lint(unterminated);
    assert.match(finding?.suggestion ?? '', /\n-( {10}limits: \{cpu: 100m, memory: 64Mi\} {3}# keep the step small)\n\\ No newline at end of file\n\+\1\n\+ {8}volumeMounts:\n/);
    const fixed = applyDiff(unterminated, finding?.suggestion ?? '');
    const blankLines = (text: string): number => text.split('\n').filter((line) => line === '').length;
    assert.equal(blankLines(fixed), blankLines(unterminated));
    assert.deepEqual(lintText(fixed, 'x.yaml', DEFAULT_OPTIONS).findings, []);
  });

  it('refuses a plan it cannot splice faithfully', () => {
    const text = 'a:\n  b: |\n    block\n  c: [1, 2]\n';
    const documents = [parseDocument(text)];
    // A block scalar is never replaced as a whole; the key is already there; the path is not a sequence.
    assert.equal(applyFixPlan(text, documents, 0, { edits: [{ op: 'set-scalar', path: ['a', 'b'], value: 'x' }] }), undefined);
    assert.equal(applyFixPlan(text, documents, 0, { edits: [{ op: 'add-key', path: ['a'], key: 'c', value: 1 }] }), undefined);
    assert.equal(applyFixPlan(text, documents, 0, { edits: [{ op: 'append', path: ['a', 'b'], value: 1 }] }), undefined);
    assert.equal(applyFixPlan(text, documents, 0, { edits: [] }), undefined);
    // Two edits of the same bytes.
    const twice = { op: 'replace-in-scalar', path: ['a', 'b'], replacements: [{ index: 0, length: 5, text: 'x' }] } as const;
    assert.equal(applyFixPlan(text, documents, 0, { edits: [twice, twice] }), undefined);
    // And it applies what it can.
    assert.equal(applyFixPlan(text, documents, 0, { edits: [{ op: 'append', path: ['a', 'c'], value: 3 }] }), 'a:\n  b: |\n    block\n  c: [1, 2, 3]\n');
  });
});
