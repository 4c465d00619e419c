import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseAllDocuments } from 'yaml';
import { ARGO_KINDS } from '../../src/tools/lint/argo-model.js';
import { FIXTURES_DIR, readFixture } from './lint-fixtures.js';

// The lint fixtures mirror real templates: every Argo object in them (test/fixtures/argo-lint, except invalid/)
// is valid against Argo's own JSON Schema (test/schemas/argo-workflows.schema.json, see NOTICE), so a rule is
// never tested on a shape Argo would refuse.

const schema = JSON.parse(readFileSync(new URL('../schemas/argo-workflows.schema.json', import.meta.url), 'utf8')) as { $id: string };
// strict: false: the schema uses Kubernetes' x-kubernetes-* annotations, unknown keywords to Ajv's strict mode.
const ajv = new Ajv2020({ strict: false, allErrors: true });
// The formats the schema names (Ajv ships none), with Kubernetes' meaning.
ajv.addFormat('date-time', (value: string) => !Number.isNaN(Date.parse(value)));
ajv.addFormat('byte', (value: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(value));
ajv.addFormat('int32', { type: 'number', validate: (value: number) => Number.isInteger(value) && Math.abs(value) < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isSafeInteger(value) });
ajv.addFormat('uint64', (value: string) => /^\d+$/.test(value));
ajv.addSchema(schema);

describe('the lint fixtures are valid Argo objects', () => {
  const files = readdirSync(FIXTURES_DIR, { recursive: true, encoding: 'utf8' })
    .map((path) => path.split('\\').join('/'))
    .filter((path) => /\.ya?ml$/.test(path) && !path.startsWith('invalid/'))
    .sort();

  it('every Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow', () => {
    const checked: string[] = [];
    for (const file of files) {
      const documents = parseAllDocuments(readFixture(file));
      assert.ok(Array.isArray(documents), file);
      documents.forEach((document, index) => {
        const object = document.toJS() as { kind?: unknown } | null;
        const kind = typeof object?.kind === 'string' ? object.kind : '';
        if (!(ARGO_KINDS as readonly string[]).includes(kind)) return;
        const validate = ajv.getSchema(`${schema.$id}#/definitions/io.argoproj.workflow.v1alpha1.${kind}`);
        assert.ok(validate, `no schema for ${kind}`);
        assert.equal(validate(object), true, `${file} document ${index + 1}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
        checked.push(`${file}#${index + 1}`);
      });
    }
    assert.equal(checked.length, 19);
  });
});
