import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { evaluateRules } from '../../src/server/rules/evaluate-rules.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import {
  BROKER_EXAMPLE_CONFIG,
  arrayAt,
  exchangeStepOf,
  isObject,
  loadArgoExamples,
  objectAt,
  projectedTokensOf,
  shellFunctionBody,
  shellTopLevel,
  stringAt,
  templatesOf,
  type ExampleDocument,
  type Json,
  type JsonObject,
} from './argo-examples.js';

/*
 * examples/argo/ checked against Argo's own JSON Schema (test/schemas/argo-workflows.schema.json, see NOTICE),
 * against the broker's example configuration, and against each other: the names they reference exist, the
 * projected token is the broker's, and the step re-reads it for every call. test/e2e/argo-step.e2e.test.ts
 * runs the step's script.
 */

const ARGO_KINDS = ['Workflow', 'WorkflowTemplate', 'CronWorkflow'] as const;
const RBAC_KINDS = ['ServiceAccount', 'Role', 'RoleBinding'] as const;
const ARGO_SCHEMA_PATH = new URL('../schemas/argo-workflows.schema.json', import.meta.url);

const argoSchema = JSON.parse(readFileSync(ARGO_SCHEMA_PATH, 'utf8')) as JsonObject;
const argoSchemaId = String(argoSchema.$id);
const definitions = objectAt(argoSchema, 'definitions', 'argo schema');

// The schema is 600 kB: one Ajv instance, the schema added once, one compiled validator per kind, reused.
// strict: false because the schema uses Kubernetes' `x-kubernetes-*` annotations and the `definitions`
// keyword of older drafts, which Ajv's strict mode refuses as unknown keywords; validation is unaffected.
const ajv = new Ajv2020({ strict: false, allErrors: true });
// The formats the schema names (Ajv ships none), with Kubernetes' meaning.
ajv.addFormat('date-time', (value: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value)));
ajv.addFormat('byte', (value: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0);
ajv.addFormat('int32', { type: 'number', validate: (value: number) => Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isSafeInteger(value) });
ajv.addFormat('uint64', (value: string) => /^\d+$/.test(value));
ajv.addSchema(argoSchema);
const validators = new Map<string, ValidateFunction>();

function argoValidator(kind: string): ValidateFunction {
  let validate = validators.get(kind);
  if (validate === undefined) {
    validate = ajv.getSchema(`${argoSchemaId}#/definitions/io.argoproj.workflow.v1alpha1.${kind}`);
    if (validate === undefined) throw new Error(`the Argo schema has no definition for ${kind}`);
    validators.set(kind, validate);
  }
  return validate;
}

/** Ajv's errors as one line each: where, and what. */
function schemaErrors(kind: string, doc: Json): string[] {
  const validate = argoValidator(kind);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
}

function resolve(schema: JsonObject): JsonObject {
  let current = schema;
  for (let hops = 0; typeof current.$ref === 'string' && hops < 32; hops += 1) {
    const name = current.$ref.replace(/^#\/definitions\//, '');
    const target = definitions[name];
    if (!isObject(target)) throw new Error(`unresolved $ref ${current.$ref}`);
    current = target;
  }
  return current;
}

/**
 * Keys the schema does not define. Argo's published schema never sets `additionalProperties: false`, so a
 * misspelled field (`volumeMount`, `schedule` for `schedules`) validates and is silently ignored by the
 * controller; this walk refuses it. Maps (labels, annotations, resources) are schemas with
 * `additionalProperties` and are walked through it.
 */
function unknownKeys(value: Json | undefined, schema: JsonObject, path: string, out: string[]): string[] {
  const resolved = resolve(schema);
  if (Array.isArray(value)) {
    const items = resolved.items;
    if (isObject(items)) value.forEach((item, i) => unknownKeys(item, items, `${path}/${i}`, out));
  } else if (isObject(value)) {
    const properties = isObject(resolved.properties) ? resolved.properties : undefined;
    const additional = isObject(resolved.additionalProperties) ? resolved.additionalProperties : undefined;
    if (properties === undefined && additional === undefined) return out;
    for (const [key, child] of Object.entries(value)) {
      const childSchema = properties?.[key];
      if (isObject(childSchema)) unknownKeys(child, childSchema, `${path}/${key}`, out);
      else if (additional !== undefined) unknownKeys(child, additional, `${path}/${key}`, out);
      else out.push(`${path}/${key}`);
    }
  }
  return out;
}

function unknownKeysOf(kind: string, doc: Json): string[] {
  return unknownKeys(doc, { $ref: `#/definitions/io.argoproj.workflow.v1alpha1.${kind}` }, '', []);
}

const examples = loadArgoExamples();
const argoDocuments = examples.filter((e) => (ARGO_KINDS as readonly string[]).includes(e.kind));
const where = (e: ExampleDocument): string => `${e.file}[${e.index}] ${e.kind}/${e.name}`;
const byKind = (kind: string): ExampleDocument[] => examples.filter((e) => e.kind === kind);

/** The broker's example configuration, through the real validator (defaults filled in). */
function exampleConfig() {
  const result = validateConfig(parse(readFileSync(BROKER_EXAMPLE_CONFIG, 'utf8')));
  if (!result.ok) throw new Error(`config/broker.example.yaml is invalid: ${JSON.stringify(result.problems)}`);
  return result.config;
}

describe('examples/argo: the files', () => {
  it('hold exactly the expected objects, each kind known', () => {
    assert.deepEqual(
      examples.map((e) => `${e.file}: ${e.kind}/${e.name}`),
      [
        'orders-fan-out.yaml: WorkflowTemplate/orders-fan-out',
        'orders-nightly.yaml: CronWorkflow/orders-nightly',
        'orders-report.yaml: WorkflowTemplate/orders-report',
        'orders-sync.yaml: WorkflowTemplate/orders-sync',
        'rbac.yaml: ServiceAccount/argo-workflow-runner',
        'rbac.yaml: ServiceAccount/argo-orders-reader',
        'rbac.yaml: Role/argo-executor',
        'rbac.yaml: RoleBinding/argo-executor',
      ],
    );
    const known = new Set<string>([...ARGO_KINDS, ...RBAC_KINDS]);
    for (const e of examples) assert.ok(known.has(e.kind), `${where(e)}: unexpected kind`);
  });

  it('every object lives in the namespace the broker example rules name (payments)', () => {
    for (const e of examples) assert.equal(stringAt(objectAt(e.doc, 'metadata', where(e)), 'namespace', where(e)), 'payments', where(e));
  });
});

describe('examples/argo: Argo JSON Schema (draft 2020-12)', () => {
  for (const e of argoDocuments) {
    it(`${where(e)} is valid against io.argoproj.workflow.v1alpha1.${e.kind}`, () => {
      assert.deepEqual(schemaErrors(e.kind, e.doc), []);
    });

    it(`${where(e)} uses no key the schema does not define`, () => {
      assert.deepEqual(unknownKeysOf(e.kind, e.doc), []);
    });
  }

  it('the validators reject what Argo would reject (the checks are not vacuous)', () => {
    const template = structuredClone(byKind('WorkflowTemplate').find((e) => e.name === 'orders-sync')?.doc) as JsonObject;
    const firstTemplate = arrayAt(objectAt(template, 'spec', 'orders-sync'), 'templates', 'spec')[0] as JsonObject;
    const volume = arrayAt(firstTemplate, 'volumes', 'template')[0];
    const source = arrayAt(objectAt(volume, 'projected', 'volume'), 'sources', 'projected')[0];
    objectAt(source, 'serviceAccountToken', 'source').expirationSeconds = '600';
    assert.deepEqual(schemaErrors('WorkflowTemplate', template), [
      '/spec/templates/0/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds must be integer {"type":"integer"}',
    ]);

    const cron = structuredClone(byKind('CronWorkflow')[0]?.doc) as JsonObject;
    const cronSpec = objectAt(cron, 'spec', 'cron');
    cronSpec.schedule = arrayAt(cronSpec, 'schedules', 'spec')[0] ?? null;
    delete cronSpec.schedules;
    assert.deepEqual(schemaErrors('CronWorkflow', cron), ['/spec must have required property \'schedules\' {"missingProperty":"schedules"}']);
    assert.deepEqual(unknownKeysOf('CronWorkflow', cron), ['/spec/schedule']);

    const script = objectAt(firstTemplate, 'script', 'template');
    script.volumeMount = script.volumeMounts ?? null;
    assert.deepEqual(unknownKeysOf('WorkflowTemplate', template), ['/spec/templates/0/script/volumeMount']);
  });
});

describe('examples/argo: the projected token is the broker\'s', () => {
  const config = exampleConfig();
  const brokerAudiences = [...new Set(config.issuers.filter((issuer) => issuer.kind === 'kubernetes').flatMap((issuer) => issuer.audiences))];

  it('config/broker.example.yaml: every kubernetes issuer accepts the same one audience', () => {
    assert.deepEqual(brokerAudiences, ['tyk-token-broker']);
    for (const issuer of config.issuers) assert.deepEqual(issuer.audiences, brokerAudiences, issuer.name);
  });

  it('every projected service-account token in the examples asks for that audience, 600 s, in a file', () => {
    const tokens = argoDocuments.flatMap((e) => templatesOf(e).flatMap((t) => projectedTokensOf(t).map((token) => ({ at: `${where(e)} ${String(t.name)}`, token }))));
    assert.equal(tokens.length, 1, 'one template mounts the token; the others reference it');
    for (const { at, token } of tokens) {
      assert.equal(token.audience, brokerAudiences[0], at);
      // The minimum Kubernetes issues; anything shorter is raised to it, anything longer lives longer if stolen.
      assert.equal(token.expirationSeconds, 600, at);
      assert.equal(token.path, 'token', at);
    }
  });

  it('the step mounts the token volume read-only and points TOKEN_FILE at the token in it', () => {
    const step = exchangeStepOf(examples);
    assert.equal(step.example.name, 'orders-sync');
    assert.equal(step.templateName, 'call-orders-api');
    const mounts = arrayAt(objectAt(step.template, 'script', 'script'), 'volumeMounts', 'script').filter(isObject);
    assert.deepEqual(
      mounts.find((m) => m.name === step.token.volumeName),
      { name: 'broker-token', mountPath: '/var/run/secrets/token-broker', readOnly: true },
    );
    assert.equal(step.env.get('TOKEN_FILE'), `${step.mountPath}/${step.token.path}`);
  });

  it('the step talks to the broker at its publicUrl', () => {
    assert.equal(exchangeStepOf(examples).env.get('BROKER_URL'), config.server.publicUrl);
  });

  /** The identity a step of `workflowTemplate` presents: its service account, no labels (only name-based rules). */
  function stepIdentity(workflowTemplate: string): WorkloadIdentity {
    const example = byKind('WorkflowTemplate').find((e) => e.name === workflowTemplate);
    assert.ok(example !== undefined, workflowTemplate);
    const serviceAccount = stringAt(objectAt(example.doc, 'spec', where(example)), 'serviceAccountName', where(example));
    return {
      issuerName: 'in-cluster',
      issuer: 'https://kubernetes.default.svc.cluster.local',
      subject: `system:serviceaccount:payments:${serviceAccount}`,
      namespace: 'payments',
      serviceAccount,
      podName: `${workflowTemplate}-x7k2p-call-orders-api-3149217812`,
      claims: {},
      cluster: { namespaceLabels: {}, serviceAccountLabels: {}, podLabels: {}, podAnnotations: {} },
    };
  }

  it('the example configuration grants the read-write workloads payments-read and payments-write', () => {
    for (const name of ['orders-sync', 'orders-fan-out']) {
      const decision = evaluateRules(compileRules(config.rules), stepIdentity(name), config.tokens);
      assert.deepEqual(decision.policies, ['payments-read', 'payments-write'], name);
      assert.deepEqual(decision.matchedRules, ['payments-argo-read-write'], name);
    }
  });

  it('the example configuration grants the read-only workload (orders-report) payments-read only', () => {
    const decision = evaluateRules(compileRules(config.rules), stepIdentity('orders-report'), config.tokens);
    assert.deepEqual(decision.policies, ['payments-read']);
    assert.deepEqual(decision.matchedRules, ['payments-argo-read-only']);
  });

  it('the two workloads\' policies open different routes: payments-read only GET/HEAD, payments-write the writes', () => {
    const routes = (policy: string) =>
      (config.policies?.[policy]?.apis ?? []).flatMap((api) => (api.routes ?? []).flatMap((route) => route.methods.map((method) => `${api.apiId} ${method} ${route.path}`)));
    assert.deepEqual(routes('payments-read').sort(), ['orders GET /orders/v1/orders$', 'orders GET /orders/v1/orders/{id}$', 'orders HEAD /orders/v1/orders/{id}$']);
    assert.deepEqual(routes('payments-write').sort(), ['orders DELETE /orders/v1/orders/{id}$', 'orders PATCH /orders/v1/orders/{id}$', 'orders POST /orders/v1/orders$', 'orders PUT /orders/v1/orders/{id}$']);
  });
});

describe('examples/argo: the step re-reads the token file for every call', () => {
  const step = exchangeStepOf(examples);
  const exchange = shellFunctionBody(step.source, 'exchange');
  const callApi = shellFunctionBody(step.source, 'call_api');

  it('exchange() reads $TOKEN_FILE each time it runs, and sends it on stdin, not argv', () => {
    assert.ok(exchange !== undefined, 'the script defines exchange() { ... }');
    assert.match(exchange, /printf 'Authorization: Bearer %s\\n' "\$\(cat "\$TOKEN_FILE"\)" \|\n\s+curl [^\n]*-H @- "\$BROKER_URL\/token"/);
  });

  it('nothing outside exchange() touches the token file: no copy of the token outlives a call', () => {
    const outside = step.source.replace(exchange ?? '', '');
    assert.equal(/TOKEN_FILE/.test(outside.replace(/^\s*#.*$/gm, '')), false);
  });

  it('every API call exchanges first, and the calls run in a loop', () => {
    assert.ok(callApi !== undefined, 'the script defines call_api() { ... }');
    assert.match(callApi, /token=\$\(exchange\) \|\| return 1/);
    assert.match(shellTopLevel(step.source), /while \[ "\$page" -le "\$PAGES" \]; do\n(?:.*\n)*?\s+call_api "[^"]+"\n(?:.*\n)*?done/);
  });

  it('receipts go to the output artifact and never hold the access token', () => {
    assert.equal(step.env.get('RECEIPTS_FILE'), step.artifacts.get('exchange-receipts'));
    const receipt = shellFunctionBody(step.source, 'record_receipt');
    assert.ok(receipt !== undefined, 'the script defines record_receipt() { ... }');
    assert.match(receipt, /\*"\$2"\*\) echo "refusing to write a receipt that contains the access token" >&2; return 1 ;;/);
  });

  it('every {{inputs.parameters.X}} in the env is an input of the template', () => {
    const referenced = [...step.env.values()].flatMap((value) => [...value.matchAll(/\{\{inputs\.parameters\.([A-Za-z0-9_-]+)\}\}/g)].map((m) => m[1]));
    assert.deepEqual(referenced.sort(), [...step.inputDefaults.keys()].sort());
  });
});

describe('examples/argo: references between the examples', () => {
  const templatesByName = new Map(byKind('WorkflowTemplate').map((e) => [e.name, e]));
  const step = exchangeStepOf(examples);

  it('the fan-out expands one step per item (withParam) into the exchanging template, bounded by parallelism', () => {
    const fanOut = templatesByName.get('orders-fan-out');
    assert.ok(fanOut !== undefined);
    const spec = objectAt(fanOut.doc, 'spec', 'orders-fan-out');
    assert.equal(spec.parallelism, 4);
    const steps = templatesOf(fanOut).flatMap((t) => (Array.isArray(t.steps) ? t.steps.flat().filter(isObject) : []));
    assert.equal(steps.length, 1);
    const only = steps[0] as JsonObject;
    assert.deepEqual(only.templateRef, { name: step.example.name, template: step.templateName });
    assert.equal(only.withParam, '{{workflow.parameters.shards}}');
    const shards = arrayAt(objectAt(spec, 'arguments', 'spec'), 'parameters', 'arguments').filter(isObject).find((p) => p.name === 'shards');
    assert.deepEqual(JSON.parse(String(shards?.value)), ['eu-1', 'eu-2', 'us-1', 'us-2', 'ap-1']);
    // Every parameter the step passes is an input of the referenced template.
    const passed = arrayAt(objectAt(only, 'arguments', 'step'), 'parameters', 'arguments').filter(isObject).map((p) => String(p.name));
    for (const name of passed) assert.ok(step.inputDefaults.has(name), `${name} is an input of ${step.templateName}`);
  });

  it('the CronWorkflow runs the fan-out template', () => {
    const cron = byKind('CronWorkflow')[0];
    assert.ok(cron !== undefined);
    const workflowSpec = objectAt(objectAt(cron.doc, 'spec', 'cron'), 'workflowSpec', 'spec');
    assert.deepEqual(workflowSpec.workflowTemplateRef, { name: 'orders-fan-out' });
    assert.ok(templatesByName.has('orders-fan-out'));
  });

  it('the read-only report runs the same exchanging step, by templateRef, with one page', () => {
    const report = templatesByName.get('orders-report');
    assert.ok(report !== undefined);
    const steps = templatesOf(report).flatMap((t) => (Array.isArray(t.steps) ? t.steps.flat().filter(isObject) : []));
    assert.equal(steps.length, 1);
    const only = steps[0] as JsonObject;
    assert.deepEqual(only.templateRef, { name: step.example.name, template: step.templateName });
    const passed = arrayAt(objectAt(only, 'arguments', 'step'), 'parameters', 'arguments').filter(isObject);
    for (const parameter of passed) assert.ok(step.inputDefaults.has(String(parameter.name)), `${String(parameter.name)} is an input of ${step.templateName}`);
  });

  it('every WorkflowTemplate runs as a service account of rbac.yaml, never default; the report as its own', () => {
    const serviceAccounts = byKind('ServiceAccount').map((e) => e.name);
    assert.deepEqual(serviceAccounts, ['argo-workflow-runner', 'argo-orders-reader']);
    assert.deepEqual(
      Object.fromEntries(byKind('WorkflowTemplate').map((e) => [e.name, objectAt(e.doc, 'spec', where(e)).serviceAccountName])),
      { 'orders-fan-out': 'argo-workflow-runner', 'orders-report': 'argo-orders-reader', 'orders-sync': 'argo-workflow-runner' },
    );
  });
});

describe('examples/argo: RBAC is the executor minimum and nothing for the broker', () => {
  it('the Role allows exactly create and patch of workflowtaskresults', () => {
    const roles = byKind('Role');
    assert.equal(roles.length, 1);
    assert.deepEqual(roles[0]?.doc.rules, [{ apiGroups: ['argoproj.io'], resources: ['workflowtaskresults'], verbs: ['create', 'patch'] }]);
  });

  it('the one RoleBinding binds that Role to both workflows\' service accounts, in their namespace', () => {
    const bindings = byKind('RoleBinding');
    assert.equal(bindings.length, 1);
    const [binding] = bindings;
    assert.ok(binding !== undefined);
    assert.deepEqual(binding.doc.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: byKind('Role')[0]?.name ?? '' });
    assert.deepEqual(binding.doc.subjects, [
      { kind: 'ServiceAccount', name: 'argo-workflow-runner', namespace: 'payments' },
      { kind: 'ServiceAccount', name: 'argo-orders-reader', namespace: 'payments' },
    ]);
  });

  it('each ServiceAccount keeps its API token (the executor needs it) and carries nothing else', () => {
    assert.deepEqual(
      byKind('ServiceAccount').map((e) => e.doc),
      ['argo-workflow-runner', 'argo-orders-reader'].map((name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'payments' } })),
    );
  });

  it('no cluster-wide grants, and no grant of tokens, token reviews, pods or secrets', () => {
    assert.deepEqual(
      examples.filter((e) => e.kind === 'ClusterRole' || e.kind === 'ClusterRoleBinding').map(where),
      [],
    );
    const text = JSON.stringify(byKind('Role').map((e) => e.doc));
    for (const forbidden of ['serviceaccounts/token', 'tokenreviews', 'pods', 'secrets', '*']) assert.equal(text.includes(`"${forbidden}"`), false, forbidden);
  });
});
