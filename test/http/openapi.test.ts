import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse } from 'yaml';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import supertest from 'supertest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import type { Express } from 'express';
import { REASON_CODES } from '../../src/server/errors.js';
import {
  ACCEPTED_SUBJECT_TOKEN_TYPES,
  GRANT_TYPE_TOKEN_EXCHANGE,
  ISSUABLE_TOKEN_TYPES,
  SIGNING_ALGORITHMS,
  TOKEN_TYPE_JWT,
} from '../../src/server/protocol.js';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { createApp, type BrokerHttpHandler } from '../../src/server/http/create-app.js';
import { ExchangeRecord } from '../../src/server/observability/exchange-record.js';
import { createMetrics } from '../../src/server/observability/metrics.js';
import { createDevClusterIssuer } from '../../src/tools/dev/dev-cluster-issuer.js';
import { devConfig, DEV_AUDIENCE, DEV_POLICY } from '../../src/server/config/dev-config.js';
import { ephemeralSigningKeySet, staticSigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { useHarness, startHarness, PUBLIC_URL, type Harness } from '../support/broker-harness.js';
import { captureLogs } from '../support/log-capture.js';
import { parseTraceParent, parseTraceState } from '../../src/server/observability/trace-context.js';

// ---------------------------------------------------------------------------------------------------------
// The document, with every $ref inlined, and a validator for the schemas it declares.
// ---------------------------------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

interface MediaTypeObject {
  readonly schema: JsonObject;
  readonly example?: unknown;
  readonly examples?: Readonly<Record<string, { readonly value?: unknown }>>;
}
interface HeaderObject {
  readonly required?: boolean;
  readonly schema: JsonObject;
  readonly example?: unknown;
}
interface ResponseObject {
  readonly description: string;
  readonly headers?: Readonly<Record<string, HeaderObject>>;
  readonly content?: Readonly<Record<string, MediaTypeObject>>;
}
interface OperationObject {
  readonly operationId?: string;
  readonly summary?: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly requestBody?: { readonly content: Readonly<Record<string, MediaTypeObject>> };
  readonly responses: Readonly<Record<string, ResponseObject>>;
  readonly 'x-dev-mode-only'?: boolean;
  /** The configuration switch without which the route is not served (POST /v1/explain: explain.enabled). */
  readonly 'x-enabled-by'?: string;
}
interface OpenApiDocument {
  readonly openapi: string;
  readonly info: { readonly title: string; readonly version: string };
  readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, JsonObject>>;
    readonly responses: Readonly<Record<string, ResponseObject>>;
  };
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** An operation documented only to say what the server answers to a method it does not serve (GET /token: 405). */
function isMethodRefusal(op: OperationObject): boolean {
  const statuses = Object.keys(op.responses);
  return statuses.length > 0 && statuses.every((status) => status === '405');
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function resolvePointer(root: unknown, ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `only local $refs are used, found ${ref}`);
  let node = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    assert.ok(isObject(node) && key in node, `$ref ${ref} does not resolve`);
    node = node[key];
  }
  return node;
}

/**
 * Inlines every `$ref` (bounded depth: the document has no recursive schemas). A schema `$ref` with sibling
 * keywords becomes `allOf`, as in JSON Schema 2020-12; any other Reference Object's siblings (summary,
 * description) override the target's, as in OpenAPI 3.1.
 */
function dereference(root: unknown): unknown {
  const resolved = new Map<string, unknown>();
  function walk(node: unknown, depth: number): unknown {
    assert.ok(depth < 64, '$ref chain too deep (a cycle?)');
    if (Array.isArray(node)) return node.map((item) => walk(item, depth + 1));
    if (!isObject(node)) return node;
    const { $ref, ...rest } = node;
    const siblings = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, walk(value, depth + 1)]));
    if (typeof $ref !== 'string') return siblings;
    let target = resolved.get($ref);
    if (target === undefined) {
      target = walk(resolvePointer(root, $ref), depth + 1);
      resolved.set($ref, target);
    }
    if (Object.keys(siblings).length === 0) return target;
    if ($ref.startsWith('#/components/schemas/')) return { allOf: [target], ...siblings };
    assert.ok(isObject(target), `$ref ${$ref} with siblings must point at an object`);
    return { ...target, ...siblings };
  }
  return walk(root, 0);
}

const documentUrl = new URL('../../openapi.yaml', import.meta.url);
const rawDocument: unknown = parse(await readFile(documentUrl, 'utf8'));
const doc = dereference(rawDocument) as OpenApiDocument;
const packageVersion = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

// Strict: an unknown keyword or format in a schema is a mistake in the document, not something to ignore.
// strictRequired is off: a oneOf branch may require members its parent schema declares (the JWK key types).
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
ajv.addFormat('uri', (value: string) => URL.canParse(value));
const validators = new WeakMap<object, ValidateFunction>();

function validatorFor(schema: JsonObject): ValidateFunction {
  let validate = validators.get(schema);
  if (validate === undefined) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

function assertValid(schema: JsonObject, data: unknown, label: string): void {
  const validate = validatorFor(schema);
  assert.ok(validate(data), `${label} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(data)}`);
}

function assertInvalid(schema: JsonObject, data: unknown, label: string): void {
  assert.equal(validatorFor(schema)(data), false, `${label} should not match its schema: ${JSON.stringify(data)}`);
}

function operation(path: string, method: string): OperationObject {
  const item = doc.paths[path];
  assert.ok(item !== undefined, `${path} is not documented in openapi.yaml`);
  const op = item[method];
  assert.ok(isObject(op), `${method.toUpperCase()} ${path} is not documented in openapi.yaml`);
  return op as unknown as OperationObject;
}

function operations(): { path: string; method: string; op: OperationObject }[] {
  const found: { path: string; method: string; op: OperationObject }[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of HTTP_METHODS) {
      if (item[method] !== undefined) found.push({ path, method, op: operation(path, method) });
    }
  }
  return found;
}

function requestSchema(path: string, method: string, mediaType: string): JsonObject {
  const media = operation(path, method).requestBody?.content[mediaType];
  assert.ok(media !== undefined, `${method.toUpperCase()} ${path} documents no ${mediaType} request body`);
  return media.schema;
}

/** Header values are strings on the wire; integer-typed header schemas (Retry-After) get the number. */
function headerValue(value: string, schema: JsonObject): unknown {
  return schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
}

/**
 * Checks a real response against a documented Response Object: its Content-Type must be documented, its
 * body must match that media type's schema, and every documented header must be present (when required)
 * and match its schema. Returns the parsed body.
 */
function assertConformsTo(res: supertest.Response, response: ResponseObject, label: string): unknown {
  const content = response.content ?? {};
  const contentType = res.headers['content-type'];
  assert.equal(typeof contentType, 'string', `${label}: no Content-Type`);
  const mediaType = String(contentType).split(';')[0]?.trim().toLowerCase() ?? '';
  const media = content[mediaType];
  assert.ok(media !== undefined, `${label}: Content-Type ${mediaType} is not documented (documented: ${Object.keys(content).join(', ') || 'none'})`);
  const body: unknown = /^application\/([a-z0-9.-]+\+)?json$/.test(mediaType) ? JSON.parse(res.text) : res.text;
  assertValid(media.schema, body, `${label} body`);
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    const value = res.headers[name.toLowerCase()];
    if (value === undefined) {
      assert.notEqual(header.required, true, `${label}: the documented header ${name} is missing`);
      continue;
    }
    assertValid(header.schema, headerValue(value, header.schema), `${label} header ${name}`);
  }
  return body;
}

/** Checks a real response against what openapi.yaml declares for its path, method and status. */
function assertConforms(res: supertest.Response, path: string, method: string): unknown {
  const label = `${method.toUpperCase()} ${path} ${res.status}`;
  const responses = operation(path, method).responses;
  const response = responses[String(res.status)];
  assert.ok(response !== undefined, `${label}: status ${res.status} is not documented (documented: ${Object.keys(responses).join(', ')})`);
  return assertConformsTo(res, response, label);
}

/** Responses of no one operation (an unknown path, a method /token does not serve): shared components. */
function assertComponentConforms(res: supertest.Response, component: string, status: number, label: string): unknown {
  assert.equal(res.status, status, `${label}: expected ${status}`);
  const response = doc.components.responses[component];
  assert.ok(response !== undefined, `components.responses.${component} is not documented`);
  return assertConformsTo(res, response, label);
}

/** The values a (dereferenced) error schema allows for one property, intersected over its allOf branches. */
function allowedValues(schema: JsonObject, property: string): Set<string> | undefined {
  let allowed: Set<string> | undefined;
  const visit = (node: JsonObject): void => {
    const properties = node.properties;
    if (isObject(properties) && isObject(properties[property])) {
      const spec = properties[property];
      const values = Array.isArray(spec.enum) ? spec.enum.map(String) : 'const' in spec ? [String(spec.const)] : undefined;
      if (values !== undefined) {
        const before = allowed;
        allowed = new Set(before === undefined ? values : values.filter((value) => before.has(value)));
      }
      if (Array.isArray(spec.allOf)) for (const part of spec.allOf) if (isObject(part)) visit({ properties: { [property]: part } });
    }
    if (Array.isArray(node.allOf)) for (const part of node.allOf) if (isObject(part)) visit(part);
  };
  visit(schema);
  return allowed;
}

// ---------------------------------------------------------------------------------------------------------
// The routes an Express app really serves, read from its router.
// ---------------------------------------------------------------------------------------------------------

interface RouterLayer {
  readonly slash?: boolean;
  readonly route?: { readonly path: string; readonly methods: Readonly<Record<string, boolean | undefined>> };
  readonly handle: { readonly stack?: readonly RouterLayer[] };
}

/** The routes an app serves: those its door answers itself, and every route of the Express application behind it. */
function servedRoutes(handler: BrokerHttpHandler): Set<string> {
  const found = new Set<string>(handler.doorRoutes);
  const visit = (stack: readonly RouterLayer[]): void => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on === true) found.add(`${method === '_all' ? 'ALL' : method.toUpperCase()} ${layer.route.path}`);
        }
      } else if (layer.handle.stack !== undefined) {
        assert.equal(layer.slash, true, 'a router is mounted under a path prefix: teach servedRoutes to prepend it');
        visit(layer.handle.stack);
      }
    }
  };
  visit((handler.express as unknown as { router: { stack: readonly RouterLayer[] } }).router.stack);
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// A broker in dev mode, listening on loopback so that it can fetch its own stand-in issuer's keys.
// ---------------------------------------------------------------------------------------------------------

interface DevBroker {
  readonly broker: Broker;
  readonly http: ReturnType<typeof supertest>;
  close(): Promise<void>;
}

async function startDevBroker(): Promise<DevBroker> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const config = devConfig((server.address() as AddressInfo).port);
  const devIssuer = await createDevClusterIssuer(config.server.publicUrl, DEV_AUDIENCE, Date.now);
  const signingKeys = await ephemeralSigningKeySet(config.signing.algorithm, Date.now());
  const broker = createBroker(config, { logger: captureLogs().logger, signingKeys, extraRoutes: devIssuer.routes });
  server.on('request', broker.app);
  return {
    broker,
    http: supertest(server),
    async close() {
      await broker.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------

describe('openapi.yaml: the document', () => {
  it('is OpenAPI 3.1.0 for this version, every operation is named, tagged and described', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'workload-token-broker');
    assert.equal(doc.info.version, packageVersion, 'info.version follows package.json');
    const ids = new Set<string>();
    for (const { path, method, op } of operations()) {
      const label = `${method.toUpperCase()} ${path}`;
      assert.equal(typeof op.operationId, 'string', `${label}: operationId`);
      assert.ok(!ids.has(op.operationId!), `${label}: operationId ${op.operationId} is not unique`);
      ids.add(op.operationId!);
      assert.ok((op.summary ?? '').length > 0 && (op.description ?? '').length > 0, `${label}: summary and description`);
      assert.ok((op.tags ?? []).length > 0, `${label}: tags`);
      // redocly.yaml turns Redocly's operation-2xx-response and operation-4xx-response off: what they are for, where it applies.
      if (!isMethodRefusal(op)) assert.ok(Object.keys(op.responses).some((status) => status.startsWith('2')), `${label}: a success response`);
      if (op.requestBody !== undefined) {
        for (const status of ['400', '413']) assert.ok(op.responses[status] !== undefined, `${label} reads a body: documents its ${status}`);
      }
      for (const [status, response] of Object.entries(op.responses)) {
        assert.match(status, /^[1-5]\d\d$/, `${label}: explicit statuses only (no "default", no ranges)`);
        assert.ok(response.description.length > 0, `${label} ${status}: description`);
        assert.ok(Object.keys(response.content ?? {}).length > 0, `${label} ${status}: content`);
        assert.ok(response.headers?.['X-Request-Id']?.required === true, `${label} ${status}: documents X-Request-Id`);
      }
    }
  });

  it('declares schemas that compile under JSON Schema 2020-12, and an example for every body that matches it', () => {
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      assert.doesNotThrow(() => validatorFor(schema), `components.schemas.${name} compiles`);
      for (const [i, example] of (Array.isArray(schema.examples) ? schema.examples : []).entries()) {
        assertValid(schema, example, `components.schemas.${name} examples[${i}]`);
      }
    }
    const checkMedia = (media: MediaTypeObject, label: string): void => {
      const examples = Object.entries(media.examples ?? {});
      assert.ok('example' in media || examples.length > 0, `${label}: has an example`);
      if ('example' in media) assertValid(media.schema, media.example, `${label} example`);
      for (const [name, example] of examples) assertValid(media.schema, example.value, `${label} examples.${name}`);
    };
    const checkResponse = (response: ResponseObject, label: string): void => {
      for (const [mediaType, media] of Object.entries(response.content ?? {})) checkMedia(media, `${label} ${mediaType}`);
      for (const [name, header] of Object.entries(response.headers ?? {})) {
        if ('example' in header) assertValid(header.schema, header.example, `${label} header ${name} example`);
      }
    };
    for (const { path, method, op } of operations()) {
      const label = `${method.toUpperCase()} ${path}`;
      for (const [mediaType, media] of Object.entries(op.requestBody?.content ?? {})) checkMedia(media, `${label} request ${mediaType}`);
      for (const [status, response] of Object.entries(op.responses)) checkResponse(response, `${label} ${status}`);
    }
    for (const [name, response] of Object.entries(doc.components.responses)) checkResponse(response, `components.responses.${name}`);
  });

  it('enumerates exactly REASON_CODES as reasons, each under exactly one status of POST /token, the 404 or the 405', () => {
    const reasonEnum = doc.components.schemas.ReasonCode?.enum;
    assert.ok(Array.isArray(reasonEnum));
    assert.deepEqual(new Set(reasonEnum), new Set(REASON_CODES));
    assert.equal(reasonEnum.length, REASON_CODES.length, 'no duplicates');

    const byStatus = new Map<string, Set<string>>();
    const errorResponses: [string, ResponseObject][] = [
      ...Object.entries(operation('/token', 'post').responses).filter(([status]) => !status.startsWith('2')),
      ['404', doc.components.responses.NotFound!],
      ['405', doc.components.responses.MethodNotAllowed!],
    ];
    for (const [status, response] of errorResponses) {
      const schema = response.content?.['application/json']?.schema;
      assert.ok(schema !== undefined, `POST /token ${status}: an application/json error body`);
      const reasons = allowedValues(schema, 'reason');
      assert.ok(reasons !== undefined && reasons.size > 0, `POST /token ${status}: the reasons it may carry are listed`);
      byStatus.set(status, reasons);
    }
    const seen = new Map<string, string>();
    for (const [status, reasons] of byStatus) {
      for (const reason of reasons) {
        assert.ok(!seen.has(reason), `reason ${reason} is documented under both ${seen.get(reason)} and ${status}`);
        seen.set(reason, status);
      }
    }
    assert.deepEqual(new Set(seen.keys()), new Set(REASON_CODES), 'every reason code has its status');
    assert.equal(seen.get('request_too_large'), '413');
    assert.equal(seen.get('not_found'), '404');
    assert.equal(seen.get('method_not_allowed'), '405');
    assert.equal(seen.get('internal_error'), '500');
    assert.equal(seen.get('issuer_unavailable'), '503');
  });

  it('spells grant and token types and signing algorithms as src/server/protocol.ts does', () => {
    const schemas = doc.components.schemas;
    const property = (schema: string, name: string): JsonObject => {
      const properties = schemas[schema]?.properties;
      assert.ok(isObject(properties) && isObject(properties[name]), `${schema}.${name}`);
      return properties[name];
    };
    assert.equal(property('TokenExchangeRequest', 'grant_type').const, GRANT_TYPE_TOKEN_EXCHANGE);
    assert.equal(property('BearerExchangeParameters', 'grant_type').const, GRANT_TYPE_TOKEN_EXCHANGE);
    assert.deepEqual(schemas.SubjectTokenType?.enum, [...ACCEPTED_SUBJECT_TOKEN_TYPES]);
    assert.deepEqual(schemas.RequestedTokenType?.enum, [...ISSUABLE_TOKEN_TYPES]);
    assert.deepEqual(property('TokenExchangeResponse', 'issued_token_type').enum, [...ISSUABLE_TOKEN_TYPES]);
    assert.ok(ISSUABLE_TOKEN_TYPES.includes(TOKEN_TYPE_JWT));
    assert.deepEqual(new Set(schemas.SigningAlgorithm?.enum as string[]), new Set(SIGNING_ALGORITHMS));
  });
});

describe('openapi.yaml: every route the app serves', () => {
  let h: Harness;
  let dev: DevBroker;
  // explain (x-enabled-by) ----------------------------------------------------------------------------------
  let explaining: Harness;
  // ---------------------------------------------------------------------------------------------------------
  let admin: Harness;
  before(async () => {
    admin = await startHarness({ config: () => ({ admin: { port: 9090, bearerTokenFile: '/unused/admin-secret' } }) });
    h = await startHarness();
    dev = await startDevBroker();
    explaining = await startHarness({ config: () => ({ explain: { enabled: true } }) });
  });
  after(async () => {
    await h.close();
    await dev.close();
    await explaining.close();
    await admin.close();
  });

  it('documents exactly the served routes, and marks exactly the dev-mode-only ones', () => {
    // router.all() catch-alls (405 with Allow) answer with a shared component, not an operation of their own.
    const catchAllPaths = (routes: Set<string>): Set<string> => new Set([...routes].filter((r) => r.startsWith('ALL ')).map((r) => r.slice(4)));
    const withoutCatchAlls = (routes: Set<string>): Set<string> => new Set([...routes].filter((r) => !r.startsWith('ALL ')));
    const production = withoutCatchAlls(servedRoutes(h.broker.app));
    const all = withoutCatchAlls(servedRoutes(dev.broker.app));
    // A method a catch-all refuses may be documented, as an operation whose only response is that 405.
    const refusedByCatchAll = new Set<string>();
    for (const path of catchAllPaths(servedRoutes(dev.broker.app))) {
      assert.ok(doc.paths[path] !== undefined, `${path} has a catch-all route but is not documented`);
      assert.match(operation(path, 'post').description ?? '', /405/, `${path}: says other methods answer 405`);
      assert.ok(doc.components.responses.MethodNotAllowed !== undefined, 'components.responses.MethodNotAllowed');
      for (const method of HTTP_METHODS) {
        const op = doc.paths[path]?.[method];
        if (op !== undefined && isMethodRefusal(op as OperationObject)) refusedByCatchAll.add(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.ok(refusedByCatchAll.has('GET /token'), 'GET /token is documented as the 405 it is');
    assert.ok(production.has('POST /token') && all.has('POST /dev/workload-token'), 'the router walk finds routes');
    for (const route of production) assert.ok(all.has(route), `dev mode serves ${route} too`);
    const devOnly = new Set([...all].filter((route) => !production.has(route)));

    // explain (x-enabled-by): routes served only when a configuration switch is on ----------------------------
    const enabledBy = new Set([...withoutCatchAlls(servedRoutes(explaining.broker.app))].filter((route) => !production.has(route)));
    assert.deepEqual(enabledBy, new Set(['POST /v1/explain']));
    const documentedEnabledBy = new Set<string>();
    // ---------------------------------------------------------------------------------------------------------

    // admin (x-listener: admin): routes of the admin listener's own application, never of the public one ------
    const adminApp = admin.broker.adminApp;
    assert.ok(adminApp !== undefined);
    const adminRoutes = servedRoutes(Object.assign(() => undefined, { express: adminApp, doorRoutes: [] }) as unknown as BrokerHttpHandler);
    const documentedAdmin = new Set<string>();
    // ---------------------------------------------------------------------------------------------------------

    const documented = new Set<string>();
    const documentedDevOnly = new Set<string>();
    for (const { path, method, op } of operations()) {
      const route = `${method.toUpperCase()} ${path}`;
      if (refusedByCatchAll.has(route)) continue;
      if ((op as { 'x-listener'?: string })['x-listener'] === 'admin') {
        documentedAdmin.add(route.replace(/\{(\w+)\}/g, ':$1'));
        assert.ok(op.tags?.includes('Admin') && /only on the admin listener/i.test(op.description ?? ''), `${route}: tagged Admin, says where it is served`);
        continue;
      }
      documented.add(route);
      if (op['x-enabled-by'] !== undefined) {
        documentedEnabledBy.add(route);
        assert.ok(op.description?.includes(`**Exists only when the configuration sets \`${op['x-enabled-by']}: true\`.**`), `${route}: says when it exists`);
      }
      if (op['x-dev-mode-only'] === true) {
        documentedDevOnly.add(route);
        assert.ok(op.tags?.includes('Dev mode'), `${route}: tagged Dev mode`);
        assert.match(op.description ?? '', /only in dev mode/i, `${route}: says it exists only in dev mode`);
      }
    }
    assert.deepEqual(documented, new Set([...all, ...enabledBy]));
    assert.deepEqual(documentedDevOnly, devOnly);
    assert.deepEqual(documentedEnabledBy, enabledBy);
    assert.deepEqual(documentedAdmin, adminRoutes);
    for (const route of adminRoutes) assert.ok(!production.has(route) && !all.has(route), `${route} is not on the public listener`);
  });
});

// explain -----------------------------------------------------------------------------------------------------
describe('openapi.yaml: real responses of POST /v1/explain conform', () => {
  let h: Harness;
  let disabled: Harness;
  before(async () => {
    h = await startHarness({ config: () => ({ explain: { enabled: true } }) });
    disabled = await startHarness();
    await Promise.all([h.broker.warmUp(), disabled.broker.warmUp()]);
  });
  after(async () => {
    await h.close();
    await disabled.close();
  });

  it('200: a granted explanation for Authorization: Bearer, and a denied one for the RFC 8693 form with a scope', async () => {
    const granted = await h.http.post('/v1/explain').set('Authorization', `Bearer ${await h.issuer.projectedToken()}`);
    const grantedBody = assertConforms(granted, '/v1/explain', 'post') as { verification: string; outcome: { decision: string; policies: string[] } };
    assert.equal(granted.status, 200);
    assert.equal(grantedBody.verification, 'verified');
    assert.deepEqual(grantedBody.outcome.policies, ['payments-read', 'payments-write', 'status-read']);

    const form = { grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: await h.issuer.projectedToken(), scope: 'payments-admin' };
    assertValid(requestSchema('/v1/explain', 'post', 'application/x-www-form-urlencoded'), form, 'the RFC 8693 form');
    const denied = await h.http.post('/v1/explain').type('form').send(form);
    const deniedBody = assertConforms(denied, '/v1/explain', 'post') as { outcome: { decision: string; reason: string } };
    assert.equal(denied.status, 200);
    assert.deepEqual([deniedBody.outcome.decision, deniedBody.outcome.reason], ['denied', 'scope_not_granted']);
  });

  it('400: the refusal of /token; 404: not served without explain.enabled', async () => {
    const expired = await h.http.post('/v1/explain').set('Authorization', `Bearer ${await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) })}`);
    const expiredBody = assertConforms(expired, '/v1/explain', 'post') as { error: string; reason: string };
    assert.equal(expired.status, 400);
    assert.deepEqual([expiredBody.error, expiredBody.reason], ['invalid_request', 'expired']);

    const absent = await disabled.http.post('/v1/explain').set('Authorization', `Bearer ${await disabled.issuer.projectedToken()}`);
    const absentBody = assertConforms(absent, '/v1/explain', 'post') as { reason: string };
    assert.equal(absent.status, 404);
    assert.equal(absentBody.reason, 'not_found');
  });
});
// -------------------------------------------------------------------------------------------------------------

describe('openapi.yaml: real responses of POST /token conform', () => {
  let h: Harness;
  let jwks: JSONWebKeySet;
  const formSchema = (): JsonObject => requestSchema('/token', 'post', 'application/x-www-form-urlencoded');

  before(async () => {
    h = await startHarness();
    await h.broker.warmUp();
    jwks = (await h.http.get('/.well-known/jwks.json').expect(200)).body as JSONWebKeySet;
  });
  after(() => h.close());

  it('200 application/json: the RFC 8693 response, with a token the documented JWKS verifies', async () => {
    const form = { grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: await h.issuer.projectedToken() };
    assertValid(formSchema(), form, 'the RFC 8693 form');
    const res = await h.http.post('/token').type('form').send(form);
    const body = assertConforms(res, '/token', 'post') as { access_token: string; expires_in: number; scope: string };
    assert.equal(res.status, 200);
    assert.equal(body.expires_in, 300);
    assert.equal(body.scope, 'payments-read payments-write status-read');
    const { payload } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: 'tyk', currentDate: new Date(h.clock.now()) });
    assert.equal(payload.sub, 'system:serviceaccount:payments:argo-runner');
  });

  it('200 text/plain: the bare token for Authorization: Bearer with no body', async () => {
    const res = await h.http.post('/token').set('Authorization', `Bearer ${await h.issuer.projectedToken()}`).set('Accept', 'text/plain');
    const token = assertConforms(res, '/token', 'post');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(typeof token, 'string');
    const { payload } = await jwtVerify(token as string, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, currentDate: new Date(h.clock.now()) });
    assert.equal(payload.scope, 'payments-read payments-write status-read');
  });

  it('200 application/json: Authorization: Bearer with only the optional parameters as a form', async () => {
    const form = { audience: 'tyk-internal', scope: 'payments-read' };
    assertValid(formSchema(), form, 'the Bearer form parameters');
    assertInvalid(formSchema(), { ...form, subject_token: 'a.b.c' }, 'the Bearer form parameters with the subject token again');
    const res = await h.http.post('/token').set('Authorization', `Bearer ${await h.issuer.projectedToken()}`).type('form').send(form);
    const body = assertConforms(res, '/token', 'post') as { access_token: string; scope: string };
    assert.equal(res.status, 200);
    assert.equal(body.scope, 'payments-read');
    const { payload } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), { audience: 'tyk-internal', currentDate: new Date(h.clock.now()) });
    assert.equal(payload.scope, 'payments-read');
  });

  it('400 expired: the documented error body, no-store', async () => {
    const res = await h.exchange(await h.issuer.projectedToken({ offsetSeconds: -(3600 + 900) }));
    const body = assertConforms(res, '/token', 'post') as { error: string; reason: string; error_description: string };
    assert.equal(res.status, 400);
    assert.deepEqual([body.error, body.reason], ['invalid_request', 'expired']);
    assert.match(body.error_description, /expired 15m ago/);
  });

  it('400 unsupported_grant_type: a grant the request schema refuses too', async () => {
    const form = { grant_type: 'client_credentials', subject_token_type: TOKEN_TYPE_JWT, subject_token: await h.issuer.projectedToken() };
    assertInvalid(formSchema(), form, 'a client_credentials form');
    const res = await h.http.post('/token').type('form').send(form);
    const body = assertConforms(res, '/token', 'post') as { error: string; reason: string };
    assert.equal(res.status, 400);
    assert.deepEqual([body.error, body.reason], ['unsupported_grant_type', 'unsupported_grant_type']);
  });

  it('400 invalid_target: scope not granted, audience not allowed', async () => {
    const scope = await h.exchange(await h.issuer.projectedToken(), { scope: 'payments-admin' });
    const scopeBody = assertConforms(scope, '/token', 'post') as { error: string; reason: string };
    assert.equal(scope.status, 400);
    assert.deepEqual([scopeBody.error, scopeBody.reason], ['invalid_target', 'scope_not_granted']);

    const audience = await h.exchange(await h.issuer.projectedToken(), { audience: 'billing' });
    const audienceBody = assertConforms(audience, '/token', 'post') as { error: string; reason: string };
    assert.equal(audience.status, 400);
    assert.deepEqual([audienceBody.error, audienceBody.reason], ['invalid_target', 'audience_not_allowed']);
  });

  it('400 unsupported_media_type: a JSON body; errors stay JSON even for Accept: text/plain', async () => {
    const res = await h.http.post('/token').set('Accept', 'text/plain').send({ subject_token: await h.issuer.projectedToken() });
    const body = assertConforms(res, '/token', 'post') as { error: string; reason: string };
    assert.equal(res.status, 400);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual([body.error, body.reason], ['invalid_request', 'unsupported_media_type']);
  });

  it('413: a body over 64 KiB, and a body of more than 32 parameters', async () => {
    const large = await h.exchange('a'.repeat(70 * 1024));
    const largeBody = assertConforms(large, '/token', 'post') as { reason: string };
    assert.equal(large.status, 413);
    assert.equal(largeBody.reason, 'request_too_large');

    const parameters = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, 'x']));
    const many = await h.exchange(await h.issuer.projectedToken(), parameters);
    const manyBody = assertConforms(many, '/token', 'post') as { reason: string };
    assert.equal(many.status, 413);
    assert.equal(manyBody.reason, 'request_too_large');
  });

  it('X-Request-Id: an acceptable one is echoed, anything else replaced by a UUID', async () => {
    const echoed = await h.exchange(await h.issuer.projectedToken()).set('X-Request-Id', 'argo-orders-sync-x7k2p');
    assertConforms(echoed, '/token', 'post');
    assert.equal(echoed.headers['x-request-id'], 'argo-orders-sync-x7k2p');

    const replaced = await h.exchange(await h.issuer.projectedToken()).set('X-Request-Id', 'has spaces/and slashes');
    assertConforms(replaced, '/token', 'post');
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('openapi.yaml: the trace context headers of /token', () => {
  const h = useHarness({ warmUp: true });
  const parameterOf = (name: string) => (doc.components as unknown as { parameters: Record<string, { name: string; schema: { pattern?: string; maxLength?: number }; example: string }> }).parameters[name];

  it('are documented on /token, and the documented example is what the broker accepts', async () => {
    const traceparent = parameterOf('TraceParent');
    const tracestate = parameterOf('TraceState');
    assert.ok(traceparent !== undefined && tracestate !== undefined);
    assert.deepEqual([traceparent.name, tracestate.name], ['traceparent', 'tracestate']);
    assert.match(traceparent.example, new RegExp(traceparent.schema.pattern ?? '^$'));
    assert.deepEqual(parseTraceParent(traceparent.example), { traceId: traceparent.example.slice(3, 35), parentSpanId: traceparent.example.slice(36, 52), traceFlags: 1 });
    assert.equal(parseTraceState(tracestate.example), tracestate.example);

    const requestId = `openapi-trace-${Date.now()}`;
    const res = await h.exchange(await h.issuer.projectedToken()).set('traceparent', traceparent.example).set('tracestate', tracestate.example).set('X-Request-Id', requestId);
    assertConforms(res, '/token', 'post');
    assert.equal(res.status, 200);
    assert.equal(res.headers.traceparent, undefined, 'no trace header in the response');
    const line = h.logs.lines.find((l) => l.requestId === requestId && l.audit !== true);
    assert.equal(line?.traceId, traceparent.example.slice(3, 35));
  });
});

describe('openapi.yaml: real responses of the other routes conform', () => {
  const h = useHarness({ warmUp: true });

  it('GET /.well-known/jwks.json: public keys only, each with kid, alg and use', async () => {
    const res = await h.http.get('/.well-known/jwks.json');
    const body = assertConforms(res, '/.well-known/jwks.json', 'get') as { keys: { kid: string; alg: string; d?: string }[] };
    assert.equal(res.status, 200);
    assert.deepEqual(body.keys.map((k) => k.kid), h.signingKeys.published().map((k) => k.kid));
    assert.ok(body.keys.every((k) => k.alg === 'ES256' && k.d === undefined));
  });

  it('GET /.well-known/oauth-authorization-server: RFC 8414 metadata, nothing the broker does not do', async () => {
    const res = await h.http.get('/.well-known/oauth-authorization-server');
    const body = assertConforms(res, '/.well-known/oauth-authorization-server', 'get');
    assert.equal(res.status, 200);
    assert.deepEqual(body, {
      issuer: PUBLIC_URL,
      token_endpoint: `${PUBLIC_URL}/token`,
      jwks_uri: `${PUBLIC_URL}/.well-known/jwks.json`,
      grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
      token_endpoint_auth_methods_supported: ['none'],
      response_types_supported: [],
    });
  });

  it('GET /.well-known/openid-configuration: points at this broker\'s JWKS and token endpoint, claims no ID tokens', async () => {
    const res = await h.http.get('/.well-known/openid-configuration');
    const body = assertConforms(res, '/.well-known/openid-configuration', 'get') as Record<string, unknown>;
    assert.equal(res.status, 200);
    assert.deepEqual([body.issuer, body.jwks_uri, body.token_endpoint], [PUBLIC_URL, `${PUBLIC_URL}/.well-known/jwks.json`, `${PUBLIC_URL}/token`]);
    assert.deepEqual(body.response_types_supported, []);
    for (const absent of ['authorization_endpoint', 'id_token_signing_alg_values_supported', 'userinfo_endpoint']) assert.equal(absent in body, false, `no ${absent}`);
    const schema = operation('/.well-known/openid-configuration', 'get').responses['200']?.content?.['application/json']?.schema;
    assert.ok(schema !== undefined);
    assertInvalid(schema, { ...body, id_token_signing_alg_values_supported: ['ES256'] }, 'a discovery document claiming ID tokens');
  });

  it('GET /healthz and GET /readyz (warmed up): 200', async () => {
    const health = await h.http.get('/healthz');
    assert.deepEqual(assertConforms(health, '/healthz', 'get'), { status: 'ok' });
    const ready = await h.http.get('/readyz');
    const body = assertConforms(ready, '/readyz', 'get') as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(ready.status, 200);
    assert.equal(body.checks['issuer:test-cluster']?.ok, true);
    assert.equal(body.checks.signingKey?.ok, true);
  });

  it('GET /metrics: text exposition with every documented metric family and no undocumented broker family', async () => {
    await h.exchange(await h.issuer.projectedToken()).expect(200);
    const res = await h.http.get('/metrics');
    const text = assertConforms(res, '/metrics', 'get') as string;
    assert.equal(res.status, 200);
    assert.match(text, /^token_broker_exchanges_total\{outcome="issued",reason="ok",issuer="test-cluster"\} 1$/m);

    const exposed = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const documented = new Map([...(operation('/metrics', 'get').description ?? '').matchAll(/^\| `(token_broker_\w+)` \| (\w+) \|/gm)].map((m) => [m[1]!, m[2]!]));
    assert.ok(documented.size >= 9, 'the /metrics description tabulates the broker\'s metrics');
    // Families documented as present only with Redis are checked in the Redis tests, where Redis is configured.
    const redisOnly = new Set([...(operation('/metrics', 'get').description ?? '').matchAll(/^\| `(token_broker_\w+)` \|.*only present when Redis is configured/gm)].map((m) => m[1]!));
    assert.ok(redisOnly.has('token_broker_redis_up'));
    for (const [name, type] of documented) {
      if (redisOnly.has(name)) assert.equal(exposed.has(name), false, `${name} is absent without Redis`);
      else assert.equal(exposed.get(name), type, `${name} is exposed as a ${type}`);
    }
    for (const name of exposed.keys()) {
      if (/^(process|nodejs)_/.test(name)) continue; // prom-client's default process metrics, under their standard names
      assert.ok(documented.has(name), `${name} is exposed but not documented under GET /metrics`);
    }
  });

  it('404: an unknown path, or an unserved method outside /token, answers the documented NotFound body', async () => {
    const requests: [string, supertest.Test][] = [
      ['GET /no/such/endpoint', h.http.get('/no/such/endpoint')],
      ['POST /healthz', h.http.post('/healthz')],
      ['DELETE /.well-known/jwks.json', h.http.delete('/.well-known/jwks.json')],
    ];
    for (const [label, request] of requests) {
      const body = assertComponentConforms(await request, 'NotFound', 404, label) as { reason: string };
      assert.equal(body.reason, 'not_found');
    }
  });

  it('405: GET /token answers what its operation documents, with Allow: POST', async () => {
    const res = await h.http.get('/token');
    const body = assertConforms(res, '/token', 'get') as { reason: string };
    assert.equal(res.status, 405);
    assert.equal(body.reason, 'method_not_allowed');
    assert.equal(res.headers.allow, 'POST');
  });

  it('405: any other method but POST on /token answers the documented MethodNotAllowed body with Allow: POST', async () => {
    const requests: [string, supertest.Test][] = [
      ['PATCH /token', h.http.patch('/token')],
      ['PUT /token', h.http.put('/token')],
      ['DELETE /token', h.http.delete('/token')],
    ];
    for (const [label, request] of requests) {
      const res = await request;
      const body = assertComponentConforms(res, 'MethodNotAllowed', 405, label) as { reason: string };
      assert.equal(body.reason, 'method_not_allowed');
      assert.equal(res.headers.allow, 'POST');
    }
  });
});

describe('openapi.yaml: readiness and 503 before the issuer is reachable', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    h.issuer.setAvailable(false);
  });
  after(() => h.close());

  it('503 from /readyz and temporarily_unavailable from /token, then 200 once the keys load', async () => {
    const notReady = await h.http.get('/readyz');
    const notReadyBody = assertConforms(notReady, '/readyz', 'get') as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(notReady.status, 503);
    assert.equal(notReadyBody.status, 'not_ready');
    assert.equal(notReadyBody.checks['issuer:test-cluster']?.ok, false);

    const unavailable = await h.exchange(await h.issuer.projectedToken());
    const unavailableBody = assertConforms(unavailable, '/token', 'post') as { error: string; reason: string };
    assert.equal(unavailable.status, 503);
    assert.deepEqual([unavailableBody.error, unavailableBody.reason], ['temporarily_unavailable', 'issuer_unavailable']);
    assert.equal(unavailable.headers['retry-after'], '5');

    h.issuer.setAvailable(true);
    await h.broker.warmUp();
    const ready = await h.http.get('/readyz');
    const readyBody = assertConforms(ready, '/readyz', 'get') as { status: string };
    assert.equal(ready.status, 200);
    assert.equal(readyBody.status, 'ready');
    assertConforms(await h.exchange(await h.issuer.projectedToken()).expect(200), '/token', 'post');
  });
});

describe('openapi.yaml: 503 without a signing key, 500 on a bug', () => {
  const h = useHarness();

  it('503 no_signing_key when no key can sign, and /readyz says so', async () => {
    const broker = createBroker(h.config, { logger: captureLogs().logger, signingKeys: staticSigningKeySet([]), now: h.clock.now });
    try {
      const http = supertest(broker.app);
      const res = await http
        .post('/token')
        .type('form')
        .send({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: await h.issuer.projectedToken() });
      const body = assertConforms(res, '/token', 'post') as { error: string; reason: string };
      assert.equal(res.status, 503);
      assert.deepEqual([body.error, body.reason], ['temporarily_unavailable', 'no_signing_key']);

      const ready = await http.get('/readyz');
      const readyBody = assertConforms(ready, '/readyz', 'get') as { checks: Record<string, { ok: boolean }> };
      assert.equal(ready.status, 503);
      assert.equal(readyBody.checks.signingKey?.ok, false);
    } finally {
      await broker.close();
    }
  });

  it('500 server_error with nothing internal in the body', async () => {
    const logs = captureLogs();
    const app = createApp({
      exchange: async () => {
        throw new TypeError('secret internal detail at /srv/app/src/x.ts:1');
      },
      signingKeys: h.signingKeys,
      publicUrl: PUBLIC_URL,
      metrics: createMetrics(),
      logger: logs.logger,
      readiness: () => ({ ready: true, checks: {} }),
      startExchangeRecord: (requestId) => new ExchangeRecord(requestId, () => undefined),
    });
    const res = await supertest(app).post('/token').set('Authorization', 'Bearer a.b.c');
    const body = assertConforms(res, '/token', 'post') as { error: string; reason: string };
    assert.equal(res.status, 500);
    assert.deepEqual([body.error, body.reason], ['server_error', 'internal_error']);
    assert.doesNotMatch(res.text, /secret internal detail|TypeError|x\.ts/);
  });
});

describe('openapi.yaml: dev-mode routes conform', () => {
  let dev: DevBroker;
  before(async () => {
    dev = await startDevBroker();
    await dev.broker.warmUp();
  });
  after(() => dev.close());

  it('GET /dev/.well-known/openid-configuration and GET /dev/openid/v1/jwks', async () => {
    const discovery = await dev.http.get('/dev/.well-known/openid-configuration');
    const discoveryBody = assertConforms(discovery, '/dev/.well-known/openid-configuration', 'get') as { issuer: string; jwks_uri: string };
    assert.equal(discovery.status, 200);
    assert.equal(discoveryBody.jwks_uri, `${discoveryBody.issuer}/openid/v1/jwks`);

    const jwks = await dev.http.get('/dev/openid/v1/jwks');
    const jwksBody = assertConforms(jwks, '/dev/openid/v1/jwks', 'get') as { keys: { alg: string }[] };
    assert.equal(jwks.status, 200);
    assert.deepEqual(jwksBody.keys.map((k) => k.alg), ['RS256']);
  });

  it('POST /dev/workload-token (JSON and form) mints a token the broker exchanges', async () => {
    const request = { namespace: 'payments', serviceAccount: 'argo-runner' };
    assertValid(requestSchema('/dev/workload-token', 'post', 'application/json'), request, 'the JSON request');
    const minted = await dev.http.post('/dev/workload-token').send(request);
    const { token } = assertConforms(minted, '/dev/workload-token', 'post') as { token: string };
    assert.equal(minted.status, 200);

    const exchanged = await dev.http.post('/token').set('Authorization', `Bearer ${token}`);
    const exchangedBody = assertConforms(exchanged, '/token', 'post') as { scope: string };
    assert.equal(exchanged.status, 200);
    assert.equal(exchangedBody.scope, DEV_POLICY);

    const form = { namespace: 'orders', serviceAccount: 'sync', expirationSeconds: '600' };
    assertValid(requestSchema('/dev/workload-token', 'post', 'application/x-www-form-urlencoded'), form, 'the form request');
    const fromForm = await dev.http.post('/dev/workload-token').type('form').send(form);
    const formToken = (assertConforms(fromForm, '/dev/workload-token', 'post') as { token: string }).token;
    assert.equal(fromForm.status, 200);
    const claims = JSON.parse(Buffer.from(formToken.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string; exp: number; iat: number };
    assert.equal(claims.sub, 'system:serviceaccount:orders:sync');
    assert.equal(claims.exp - claims.iat, 600);
    assert.equal(decodeProtectedHeader(formToken).alg, 'RS256');
  });

  it('POST /dev/workload-token: 400 for a field that is not a DNS label, 413 over 4 KiB', async () => {
    const request = { namespace: 'Not_A_Label' };
    assertInvalid(requestSchema('/dev/workload-token', 'post', 'application/json'), request, 'a namespace that is not a DNS label');
    const bad = await dev.http.post('/dev/workload-token').send(request);
    const badBody = assertConforms(bad, '/dev/workload-token', 'post') as { reason: string; error_description: string };
    assert.equal(bad.status, 400);
    assert.equal(badBody.reason, 'invalid_request');
    assert.match(badBody.error_description, /namespace/);

    const large = await dev.http.post('/dev/workload-token').send({ namespace: 'payments', audience: 'x'.repeat(5000) });
    const largeBody = assertConforms(large, '/dev/workload-token', 'post') as { reason: string };
    assert.equal(large.status, 413);
    assert.equal(largeBody.reason, 'request_too_large');
  });
});
