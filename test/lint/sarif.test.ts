import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { LINT_RULES } from '../../src/tools/lint/lint-rules.js';
import { buildSarifLog, relativeUri, renderSarif } from '../../src/tools/lint/sarif-log.js';
import { FIXTURE_CREDENTIALS, lintFixture } from './lint-fixtures.js';

// The SARIF schema is a faithful subset of the one GitHub's upload-sarif validates against (test/schemas/NOTICE
// says what it keeps): anything it accepts, the full schema accepts.
const schema = JSON.parse(readFileSync(new URL('../schemas/sarif-2.1.0-subset.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** RFC 3986 characters, with well-formed percent escapes. */
const URI_REFERENCE = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;

function validator() {
  // strict: false because Ajv's strict mode refuses an idiom of the SARIF schema (`required` inside anyOf
  // branches without their own `properties`); validation itself is unaffected.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  // Ajv ships no formats: these follow RFC 3986 (absolute URI: a scheme, then a reference).
  ajv.addFormat('uri-reference', (value: string) => URI_REFERENCE.test(value));
  ajv.addFormat('uri', (value: string) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) && URI_REFERENCE.test(value));
  return ajv.compile(schema);
}

const FIXTURES = ['static-jwt-script.yaml', 'http-templates.yaml', 'parameters.yaml', 'broker-read-once.yaml', 'multi-document.yaml', 'invalid/not-yaml.yaml', 'clean/cron.yaml'];

describe('SARIF output', () => {
  const reports = FIXTURES.map((name) => lintFixture(name));
  const log = JSON.parse(renderSarif(reports)) as Record<string, unknown>;

  it('validates against the SARIF 2.1.0 schema', () => {
    const validate = validator();
    assert.equal(validate(log), true, JSON.stringify(validate.errors, null, 2));
  });

  it('the schema rejects what GitHub would (a sanity check of the validator)', () => {
    const validate = validator();
    const broken = structuredClone(log) as { runs: { results: { locations: { physicalLocation: { region: Record<string, unknown> } }[]; level?: string }[] }[] };
    const result = broken.runs[0]?.results[0];
    assert.ok(result);
    result.level = 'fatal';
    assert.equal(validate(broken), false);
    result.level = 'error';
    const region = result.locations[0]?.physicalLocation.region;
    assert.ok(region);
    region.startLine = 0;
    assert.equal(validate(broken), false);
    delete region.startLine;
    assert.equal(validate(broken), false);
    region.startLine = 1;
    const location = result.locations[0]?.physicalLocation as unknown as { artifactLocation: { uri: string } };
    location.artifactLocation.uri = 'orders sync.yaml';
    assert.equal(validate(broken), false);
    location.artifactLocation.uri = 'orders%20sync.yaml';
    assert.equal(validate(broken), true);
    assert.equal(validate({ ...log, extra: true }), false);
  });

  it('has what GitHub code scanning reads: driver name and rules with help, results with location and level', () => {
    const sarif = buildSarifLog(reports);
    assert.equal(sarif.version, '2.1.0');
    assert.equal(sarif.runs.length, 1);
    const [run] = sarif.runs;
    assert.ok(run);
    assert.equal(run.tool.driver.name, 'token-broker lint');
    assert.deepEqual(
      run.tool.driver.rules.map((rule) => [rule.id, rule.defaultConfiguration.level, rule.help.text.length > 40, Number(rule.properties['security-severity']) > 0]),
      LINT_RULES.map((rule) => [rule.id, rule.severity, true, true]),
    );
    assert.deepEqual(
      run.results.map((result) => [
        result.ruleId,
        run.tool.driver.rules[result.ruleIndex]?.id,
        result.level,
        result.locations[0]?.physicalLocation.artifactLocation.uri,
        result.locations[0]?.physicalLocation.region.startLine,
        result.locations[0]?.physicalLocation.region.startColumn,
      ]),
      [
        ['literal-jwt', 'literal-jwt', 'error', 'static-jwt-script.yaml', 24, 46],
        ['literal-jwt', 'literal-jwt', 'error', 'http-templates.yaml', 23, 28],
        ['secret-credential-to-gateway', 'secret-credential-to-gateway', 'warning', 'http-templates.yaml', 30, 13],
        ['literal-tyk-key', 'literal-tyk-key', 'error', 'http-templates.yaml', 35, 47],
        ['broker-call-without-projected-token', 'broker-call-without-projected-token', 'error', 'http-templates.yaml', 38, 14],
        ['literal-tyk-key', 'literal-tyk-key', 'error', 'parameters.yaml', 10, 16],
        ['literal-jwt', 'literal-jwt', 'error', 'parameters.yaml', 18, 22],
        ['literal-bearer-token', 'literal-bearer-token', 'error', 'parameters.yaml', 25, 49],
        ['broker-token-read-once', 'broker-token-read-once', 'warning', 'broker-read-once.yaml', 20, 11],
        ['literal-bearer-token', 'literal-bearer-token', 'error', 'multi-document.yaml', 19, 63],
        ['invalid-yaml', 'invalid-yaml', 'error', 'invalid/not-yaml.yaml', 7, 5],
      ],
    );
    assert.equal(run.results[0]?.message.text, 'A JWT is written into the script source of template "call-api". Fix: Mount a projected service-account token and exchange it at the broker for each call instead (--suggest shows the change).');
  });

  it('never contains a credential from the files it reports on', () => {
    const text = renderSarif(reports);
    assert.deepEqual(FIXTURE_CREDENTIALS.filter((credential) => text.includes(credential)), []);
  });

  it('writes artifact URIs relative, with forward slashes and escapes', () => {
    assert.equal(relativeUri('workflows/orders sync.yaml'), 'workflows/orders%20sync.yaml');
    assert.equal(relativeUri('..\\shared\\a#b.yaml'), '../shared/a%23b.yaml');
    assert.equal(relativeUri('./x.yaml'), './x.yaml');
  });
});
