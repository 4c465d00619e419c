import { readFile } from 'node:fs/promises';
import { importJWK, type JWK } from 'jose';
import type { BrokerConfig, IssuerConfig } from '../../server/config/schema.js';
import { discoverJwksUri } from '../../server/issuers/discover-jwks-uri.js';
import { configuredKeyOrigins } from '../../server/issuers/key-origins.js';
import type { ClusterConnection } from '../../server/kubernetes/kube-config.js';
import { createIssuerFetch, type IssuerFetch } from '../../server/issuers/issuer-fetch.js';
import { parseJwks } from '../../server/issuers/jwks-selection.js';
import { computeKeyStates, keyLifecycleSettings } from '../../server/mint/key-lifecycle.js';
import { readSigningKeysDir } from '../../server/mint/signing-key-set.js';
import type { SigningKey } from '../../server/mint/signing-key.js';
import { grantablePolicies } from '../tyk-kit/grantable-policies.js';
import { brokerJwksUrl, tykJwtValidation } from '../tyk-kit/tyk-jwt-validation.js';
import { assessBrokerJwks, type ExpectedBrokerKeys } from './broker-jwks-check.js';
import { assessClockSkew, clockSkewSeconds, type DateSample } from './clock-skew.js';
import { check, type DoctorCheck } from './doctor-check.js';
import { probeJson, type ProbeAnswer, type ProbeFetch } from './http-probe.js';
import { assessIssuerKeys } from './issuer-keys-check.js';
import { checkKubernetesAccess, type AccessReviewer } from './kubernetes-access-check.js';
import { assessPrePublishWindow, prePublishSecondsOf } from './pre-publish-window.js';
import { assessSigningKeys } from './signing-keys-check.js';
import { assessTykApis, type TykApiExpectation, type TykPolicySummary } from './tyk-api-checks.js';
import { tykApiViews, type TykApiView } from './tyk-api-view.js';
import { assessTykPolicies, tykPolicySummaries } from './tyk-policies-check.js';

/** The gateway to check, when one is given. */
export interface TykTarget {
  /** Base URL of the gateway, e.g. http://tyk-gateway:8080. */
  readonly url: string;
  /** The gateway secret (`x-tyk-authorization`); sent to the gateway only, never printed. */
  readonly secret: string;
  /** Check this API only; otherwise every API naming the broker's JWKS. */
  readonly apiId?: string | undefined;
}

export interface DoctorOptions {
  readonly tyk?: TykTarget | undefined;
  /** Bound on each network request (an issuer check makes up to two). Default 5000 ms. */
  readonly timeoutMs?: number;
  readonly now?: () => number;
  /** For the broker's JWKS and Tyk. Default: the global fetch. */
  readonly fetch?: ProbeFetch;
  /** For issuers. Default: the broker's own fetch (caFile, bearerTokenFile, no redirects). */
  readonly issuerFetch?: (issuer: IssuerConfig, timeoutMs: number) => IssuerFetch;
  /** For tests: how a cluster block's permissions are reviewed. Default: SelfSubjectAccessReview. */
  readonly kubernetesReviewerFor?: (connection: ClusterConnection) => AccessReviewer;
  /** Called with each result as soon as it is known, in the order they are returned. */
  readonly onCheck?: (result: DoctorCheck) => void;
}

const DEFAULT_TIMEOUT_MS = 5000;

/** An error as one line; a file that cannot be read (a CA bundle, a token file) is named with the reason. */
function messageOf(error: unknown): string {
  const errno = error as NodeJS.ErrnoException;
  if (error instanceof Error && typeof errno.path === 'string' && typeof errno.code === 'string') return `cannot read ${errno.path} (${errno.code})`;
  return error instanceof Error ? error.message : String(error);
}

/** Runs `run` with a signal that aborts at the deadline, and rejects then even if `run` ignores the signal. */
async function withDeadline<T>(timeoutMs: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([run(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The algorithm a JWK would verify, for a trial import: its own `alg`, else what its type implies. */
function trialAlgorithm(key: JWK): string | undefined {
  if (typeof key.alg === 'string') return key.alg;
  if (key.kty === 'RSA') return 'RS256';
  if (key.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as Record<string, string>)[key.crv ?? ''];
  return undefined;
}

/** kids (or "#index") of the RSA and EC keys the runtime cannot import. */
async function unusableKeys(keys: readonly JWK[]): Promise<string[]> {
  const unusable: string[] = [];
  for (const [i, key] of keys.entries()) {
    if ((key.kty !== 'RSA' && key.kty !== 'EC') || key.d !== undefined) continue;
    const alg = trialAlgorithm(key);
    try {
      if (alg === undefined) throw new Error('no algorithm fits');
      await importJWK({ ...key, ext: true }, alg);
    } catch {
      unusable.push(key.kid ?? `#${i}`);
    }
  }
  return unusable;
}

async function checkIssuer(issuer: IssuerConfig, options: Required<Pick<DoctorOptions, 'timeoutMs' | 'now' | 'issuerFetch'>>): Promise<DoctorCheck[]> {
  const name = `issuer ${issuer.name}`;
  if (issuer.jwksFile !== undefined) {
    try {
      const keys = parseJwks(JSON.parse(await readFile(issuer.jwksFile, 'utf8')));
      return [assessIssuerKeys({ issuerName: issuer.name, source: issuer.jwksFile, keys, unusable: await unusableKeys(keys) })];
    } catch (error) {
      return [check('FAIL', name, `cannot use jwksFile ${issuer.jwksFile}: ${messageOf(error)}`, 'refresh it: kubectl get --raw /openid/v1/jwks > FILE')];
    }
  }
  const { now, timeoutMs } = options;
  const samples: DateSample[] = [];
  const results: DoctorCheck[] = [];
  try {
    // The judgement is returned rather than pushed, so a run cut off by the deadline cannot add to the results later.
    const found = await withDeadline(2 * timeoutMs, async (signal) => {
      // The broker's own fetch path (CA bundle, bearer token), cut off at the deadline, noting each answer's Date.
      const base = options.issuerFetch(issuer, timeoutMs);
      const fetch: IssuerFetch = async (url, init) => {
        const sentAt = now();
        const response = await base(url, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal });
        samples.push({ date: response.headers.get('date'), sentAt, receivedAt: now() });
        return response;
      };
      const jwksUri = issuer.jwksUri ?? (await discoverJwksUri(issuer, fetch));
      const response = await fetch(jwksUri, { headers: { accept: 'application/jwk-set+json, application/json' } });
      if (!response.ok) throw new Error(`JWKS ${jwksUri} answered HTTP ${response.status}`);
      let document: unknown;
      try {
        document = await response.json();
      } catch {
        throw new Error(`JWKS ${jwksUri} is not JSON`);
      }
      const keys = parseJwks(document);
      return assessIssuerKeys({ issuerName: issuer.name, source: jwksUri, keys, unusable: await unusableKeys(keys) });
    });
    results.push(found);
  } catch (error) {
    results.push(
      check('FAIL', name, messageOf(error), 'check that the broker can reach the issuer: its URL (discoveryUrl, jwksUri), caFile and bearerTokenFile'),
    );
  }
  const sample = samples[samples.length - 1];
  if (sample !== undefined) results.push(assessClockSkew(issuer.name, clockSkewSeconds(sample), issuer.clockSkewSeconds));
  return results;
}

interface SigningKeysOutcome {
  readonly result: DoctorCheck;
  readonly expected: ExpectedBrokerKeys | undefined;
}

async function checkSigningKeys(config: BrokerConfig, now: number): Promise<SigningKeysOutcome> {
  const dir = config.signing.keysDir;
  if (dir === undefined) {
    return { result: check('FAIL', 'signing-keys', 'signing.keysDir is not set', 'point it at the mounted Secret of PKCS#8 keys (token-broker keys generate)'), expected: undefined };
  }
  let keys: SigningKey[];
  try {
    keys = (await readSigningKeysDir(dir, config.signing.algorithm)).files.map((file) => file.key);
  } catch (error) {
    return { result: check('FAIL', 'signing-keys', messageOf(error), 'token-broker keys generate --alg ALG --out DIR writes a key the broker can read'), expected: undefined };
  }
  const states = computeKeyStates(keys, now, keyLifecycleSettings(config.signing, config.tokens));
  const kidsIn = (state: string) => [...states.states].filter(([, info]) => info.state === state).map(([kid]) => kid);
  const expected = states.active === undefined ? undefined : { active: states.active.kid, pending: kidsIn('pending'), retiring: kidsIn('retiring') };
  return { result: assessSigningKeys(dir, states), expected };
}

async function checkBrokerJwks(config: BrokerConfig, expected: ExpectedBrokerKeys | undefined, fetchImpl: ProbeFetch, timeoutMs: number): Promise<DoctorCheck> {
  const url = brokerJwksUrl(config.server.publicUrl);
  const fix = 'is the broker running and publicUrl right?';
  let answer: ProbeAnswer;
  try {
    answer = await probeJson(fetchImpl, url, {}, timeoutMs);
  } catch (error) {
    return check('FAIL', 'broker-jwks', `cannot fetch ${url} (${messageOf(error)})`, fix);
  }
  if (answer.status !== 200) return check('FAIL', 'broker-jwks', `${url} answered HTTP ${answer.status}`, fix);
  let keys: JWK[];
  try {
    keys = parseJwks(answer.json);
  } catch (error) {
    return check('FAIL', 'broker-jwks', `${url} is not a JWK Set (${messageOf(error)})`, fix);
  }
  return assessBrokerJwks(url, keys.map((key) => key.kid).filter((kid): kid is string => typeof kid === 'string'), expected);
}

async function checkTyk(config: BrokerConfig, tyk: TykTarget, fetchImpl: ProbeFetch, timeoutMs: number): Promise<DoctorCheck[]> {
  const base = tyk.url.replace(/\/+$/, '');
  const results: DoctorCheck[] = [];
  try {
    const hello = await probeJson(fetchImpl, `${base}/hello`, {}, timeoutMs);
    const body = hello.json !== null && typeof hello.json === 'object' ? (hello.json as Record<string, unknown>) : {};
    const version = typeof body.version === 'string' ? body.version : 'of unknown version';
    if (hello.status !== 200 || body.status !== 'pass') {
      results.push(check('WARN', 'tyk', `${base}/hello answered HTTP ${hello.status} with status ${JSON.stringify(body.status ?? null)} (Tyk ${version})`, 'check the gateway\'s Redis and its logs'));
    } else {
      results.push(check('OK', 'tyk', `Tyk ${version} answers ${base}/hello (status pass)`));
    }
  } catch (error) {
    return [check('FAIL', 'tyk', `cannot reach ${base}/hello (${messageOf(error)})`, 'is --tyk-url right and the gateway running?')];
  }

  const admin = { 'x-tyk-authorization': tyk.secret };
  const refused = check('FAIL', 'tyk-admin', 'Tyk refused the secret (HTTP 403 on its REST API)', 'check that --tyk-secret-file holds the gateway secret (tyk.conf "secret", TYK_GW_SECRET)');
  const { grantable, templated } = grantablePolicies(config.rules);
  let policies: TykPolicySummary[] | undefined;
  try {
    const answer = await probeJson(fetchImpl, `${base}/tyk/policies`, admin, timeoutMs);
    if (answer.status === 403) return [...results, refused];
    if (answer.status !== 200) throw new Error(`GET /tyk/policies answered HTTP ${answer.status}`);
    policies = tykPolicySummaries(answer.json);
    results.push(...assessTykPolicies(grantable, templated, policies));
  } catch (error) {
    results.push(check('FAIL', 'tyk-policies', `cannot list Tyk's policies: ${messageOf(error)}`, 'Tyk lists file policies with policies.policy_source: file and a policy_path'));
  }

  let apis: unknown;
  try {
    const answer = await probeJson(fetchImpl, `${base}/tyk/apis`, admin, timeoutMs);
    if (answer.status === 403) return [...results, refused];
    if (answer.status !== 200) throw new Error(`GET /tyk/apis answered HTTP ${answer.status}`);
    apis = answer.json;
  } catch (error) {
    return [...results, check('FAIL', 'tyk-apis', `cannot list Tyk's APIs: ${messageOf(error)}`, 'check the gateway\'s logs')];
  }
  // Tyk OAS documents carry what the classic listing drops (the header block); gateways without OAS answer 404.
  let oasList: unknown;
  try {
    const answer = await probeJson(fetchImpl, `${base}/tyk/apis/oas`, admin, timeoutMs);
    oasList = answer.status === 200 ? answer.json : undefined;
  } catch {
    oasList = undefined;
  }
  let views: TykApiView[];
  try {
    views = tykApiViews(apis, oasList);
  } catch (error) {
    return [...results, check('FAIL', 'tyk-apis', `cannot read Tyk's API list: ${messageOf(error)}`)];
  }
  const validation = tykJwtValidation(config);
  const expected: TykApiExpectation = {
    jwksUrl: validation.jwksUrl,
    signingMethod: validation.signingMethod,
    algorithm: config.signing.algorithm,
    policyFieldName: validation.policyFieldName,
    grantablePolicies: grantable,
    issuer: validation.issuer,
    audience: config.tokens.audience,
    prePublishSeconds: prePublishSecondsOf(config.signing),
  };
  results.push(...assessTykApis(views, expected, policies, tyk.apiId));
  return results;
}

/**
 * Checks the chain a token travels, for a valid configuration: every issuer's keys (and clock), each cluster's API
 * permissions (SelfSubjectAccessReview with the broker's own credential), the signing keys,
 * the pre-publish window, the JWKS the running broker serves and, with a gateway, Tyk's policies and API
 * definitions. Never throws for what it finds: every finding is a check. Network requests are bounded.
 */
export async function runDoctor(config: BrokerConfig, options: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  const fetchImpl: ProbeFetch = options.fetch ?? ((url, init) => fetch(url, init));
  const issuerFetch = options.issuerFetch ?? ((issuer: IssuerConfig, ms: number) => createIssuerFetch({ caFile: issuer.caFile, bearerTokenFile: issuer.bearerTokenFile, credentialOrigins: configuredKeyOrigins(issuer), timeoutMs: ms }));
  const results: DoctorCheck[] = [];
  const emit = (found: readonly DoctorCheck[]) => {
    for (const result of found) {
      results.push(result);
      options.onCheck?.(result);
    }
  };

  // Issuers are independent: ask them all at once, report in configuration order.
  const issuerChecks = await Promise.all(config.issuers.map((issuer) => checkIssuer(issuer, { timeoutMs, now, issuerFetch })));
  emit(issuerChecks.flat());
  emit(await checkKubernetesAccess(config, { timeoutMs, ...(options.kubernetesReviewerFor !== undefined && { reviewerFor: options.kubernetesReviewerFor }) }));

  const keys = await checkSigningKeys(config, now());
  emit([keys.result, assessPrePublishWindow(config.signing)]);
  emit([await checkBrokerJwks(config, keys.expected, fetchImpl, timeoutMs)]);

  if (options.tyk !== undefined) emit(await checkTyk(config, options.tyk, fetchImpl, timeoutMs));
  return results;
}
