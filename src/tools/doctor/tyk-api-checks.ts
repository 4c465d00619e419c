import { check, type DoctorCheck } from './doctor-check.js';
import type { TykApiView } from './tyk-api-view.js';

/** What a Tyk API must say to accept the broker's tokens, from the broker configuration (see src/tools/tyk-kit). */
export interface TykApiExpectation {
  /** {publicUrl}/.well-known/jwks.json */
  readonly jwksUrl: string;
  readonly signingMethod: string;
  /** signing.algorithm, for messages. */
  readonly algorithm: string;
  readonly policyFieldName: string;
  /** Literal policy IDs the rules can grant; the broker puts all of them in the scope claim. */
  readonly grantablePolicies: readonly string[];
  /** `iss` of minted tokens (server.publicUrl). */
  readonly issuer: string;
  /** tokens.audience: the `aud` of a token when the caller asks for none. */
  readonly audience: string;
  /** signing.prePublishSeconds, when known: a longer Tyk cache defeats the pre-publish window. */
  readonly prePublishSeconds: number | undefined;
}

/** A Tyk policy as far as the cross-check needs it. */
export interface TykPolicySummary {
  readonly id: string;
  readonly orgId: string;
  readonly apiIds: readonly string[];
}

const ISSUE_7461 = 'TykTechnologies/tyk#7461';

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}

/** Every JWKS URL the API names: its jwksURIs and a URL in its source, plain or base64. */
function urlsOf(api: TykApiView): string[] {
  const urls = api.jwksUris.map((entry) => entry.url);
  if (api.source.kind === 'plain-url' || api.source.kind === 'base64-url') urls.push(api.source.url);
  return urls;
}

/** True when the API takes keys from the broker's JWKS, however it spells the URL. */
export function pointsAtBroker(api: TykApiView, jwksUrl: string): boolean {
  return urlsOf(api).some((url) => sameUrl(url, jwksUrl));
}

/** Go duration strings as Tyk writes cache timeouts ("240s", "4m", "1h30m"), in seconds; undefined if unreadable. */
export function goDurationSeconds(value: string): number | undefined {
  if (!/^(\d+(\.\d+)?(h|ms|m|s))+$/.test(value)) return undefined;
  const unit: Readonly<Record<string, number>> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let seconds = 0;
  for (const part of value.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) seconds += Number(part[1]) * (unit[part[2] ?? ''] ?? 0);
  return seconds;
}

function label(api: TykApiView): string {
  return `tyk-api ${api.apiId === '' ? '(no id)' : api.apiId}`;
}

/** The problems of one API that takes (or should take) keys from the broker; empty when it accepts its tokens. */
function problemsOf(api: TykApiView, expected: TykApiExpectation, policies: readonly TykPolicySummary[] | undefined): DoctorCheck[] {
  const name = label(api);
  const problems: DoctorCheck[] = [];
  const regenerate = `regenerate it: token-broker tyk api --config FILE --api-id ${api.apiId || 'ID'} --format ${api.format} ...`;
  if (!api.jwtEnabled) problems.push(check('FAIL', name, 'JWT authentication is not enabled', regenerate));
  if (!pointsAtBroker(api, expected.jwksUrl)) {
    const where = urlsOf(api);
    problems.push(
      check(
        'FAIL',
        name,
        `takes its keys from ${where.length > 0 ? where.join(', ') : `a ${api.source.kind} source`}, not the broker's JWKS ${expected.jwksUrl}`,
        regenerate,
      ),
    );
  }
  if (api.source.kind === 'plain-url') {
    // With jwksURIs set, Tyk v5.9+ uses those and never decodes the source; the bug still bites older gateways.
    const shadowed = api.jwksUris.length > 0;
    problems.push(
      check(
        shadowed ? 'WARN' : 'FAIL',
        name,
        `${api.format === 'oas' ? 'source' : 'jwt_source'} is a plain URL (${api.source.url}): Tyk v5.9+ fails every request after the first with "illegal base64 data" (${ISSUE_7461})${shadowed ? '; jwksURIs take precedence on v5.9+' : ''}`,
        `put the base64 of the URL there: ${Buffer.from(api.source.url, 'utf8').toString('base64')}`,
      ),
    );
  } else if (api.source.kind === 'invalid' && api.jwksUris.length === 0) {
    problems.push(check('FAIL', name, 'jwt_source is neither a URL nor valid base64', regenerate));
  }
  if (api.signingMethod !== expected.signingMethod) {
    problems.push(
      check(
        'FAIL',
        name,
        `signing method is "${api.signingMethod || '(unset)'}" but the broker signs ${expected.algorithm} ("${expected.signingMethod}"): Tyk refuses every token ("Unexpected signing method")`,
        `set ${api.format === 'oas' ? 'signingMethod' : 'jwt_signing_method'} to "${expected.signingMethod}"`,
      ),
    );
  }
  if (api.format === 'oas' && api.oasKnown && api.headerEnabled !== true) {
    problems.push(
      check('FAIL', name, 'the JWT scheme has no enabled header block: Tyk OAS reads no Authorization header and answers "Authorization field missing"', 'add header: {enabled: true, name: Authorization} to the JWT security scheme'),
    );
  }
  if (api.format === 'oas' && !api.oasKnown) {
    problems.push(check('WARN', name, 'its Tyk OAS document could not be read (GET /tyk/apis/oas), so the header block was not checked'));
  }
  if (api.policyFieldName !== expected.policyFieldName) {
    problems.push(
      check(
        'FAIL',
        name,
        api.policyFieldName === ''
          ? `no policy field name: Tyk reads no policy claim and refuses the broker's tokens ("no matching policy")`
          : `policy field name is "${api.policyFieldName}" but the broker puts the policy in "${expected.policyFieldName}"`,
        `set ${api.format === 'oas' ? 'policyFieldName' : 'jwt_policy_field_name'} to "${expected.policyFieldName}"`,
      ),
    );
  }
  const unmapped = expected.grantablePolicies.filter((id) => !api.scopeMappedPolicies.includes(id));
  if (unmapped.length > 0 && expected.grantablePolicies.length > 1) {
    problems.push(
      check('WARN', name, `the scope-to-policy mapping lacks ${unmapped.join(', ')}: a token granting several policies gets only its first one (the policy claim) here`, regenerate),
    );
  }
  if (api.allowedIssuers !== undefined && !api.allowedIssuers.includes(expected.issuer)) {
    problems.push(check('FAIL', name, `allowedIssuers ${JSON.stringify(api.allowedIssuers)} lacks the broker's issuer "${expected.issuer}" (server.publicUrl, exactly)`, `add "${expected.issuer}" to allowedIssuers`));
  }
  if (api.allowedAudiences !== undefined && !api.allowedAudiences.includes(expected.audience)) {
    problems.push(check('FAIL', name, `allowedAudiences ${JSON.stringify(api.allowedAudiences)} lacks the broker's default audience "${expected.audience}"`, `add "${expected.audience}" to allowedAudiences`));
  }
  if (expected.prePublishSeconds !== undefined) {
    for (const entry of api.jwksUris) {
      const seconds = entry.cacheTimeout === undefined ? undefined : goDurationSeconds(entry.cacheTimeout);
      if (seconds !== undefined && sameUrl(entry.url, expected.jwksUrl) && seconds >= expected.prePublishSeconds) {
        problems.push(
          check(
            'WARN',
            name,
            `caches the broker's JWKS for ${entry.cacheTimeout}, not less than signing.prePublishSeconds (${expected.prePublishSeconds} s): new keys can sign before this API has fetched them`,
            'lower cacheTimeout, or raise signing.prePublishSeconds (and signing.tykJwksCacheSeconds to match)',
          ),
        );
      }
    }
  }
  if (policies !== undefined) {
    const granting = policies.filter((policy) => expected.grantablePolicies.includes(policy.id) && policy.apiIds.includes(api.apiId));
    const otherOrg = granting.filter((policy) => policy.orgId !== api.orgId);
    if (otherOrg.length > 0) {
      problems.push(
        check('FAIL', name, `polic${otherOrg.length === 1 ? 'y' : 'ies'} ${otherOrg.map((p) => `${p.id} (org_id "${p.orgId}")`).join(', ')} ${otherOrg.length === 1 ? 'belongs' : 'belong'} to another org than the API ("${api.orgId}"): Tyk does not apply them`, 'give the policies the API\'s org_id (token-broker tyk policies --org-id)'),
      );
    }
    const known = policies.filter((policy) => expected.grantablePolicies.includes(policy.id));
    if (granting.length === 0 && known.length > 0) {
      problems.push(
        check('FAIL', name, `none of the policies the rules grant has ${api.apiId} in its access_rights: Tyk answers "Access to this API has been disallowed"`, `token-broker tyk policies --config FILE --api-id ${api.apiId}`),
      );
    }
  }
  return problems;
}

function summaryOf(api: TykApiView, policies: readonly TykPolicySummary[] | undefined, expected: TykApiExpectation): string {
  const parts = [`${api.format === 'oas' ? 'Tyk OAS' : 'classic'} API "${api.name || api.apiId}" validates with ${expected.jwksUrl}`, api.signingMethod];
  if (api.format === 'oas') parts.push('header block');
  parts.push(`policy field ${api.policyFieldName}`);
  if (policies !== undefined) {
    const granting = policies.filter((policy) => expected.grantablePolicies.includes(policy.id) && policy.apiIds.includes(api.apiId)).length;
    parts.push(`${granting} of ${expected.grantablePolicies.length} grantable policies grant it`);
  }
  return parts.join(', ');
}

/**
 * Judges the APIs loaded in Tyk: with `apiId`, that API must take the broker's tokens; without, at least one must,
 * and every API naming the broker's JWKS is checked. Each problem is its own line; an API without problems gets
 * one OK line. `policies` (from GET /tyk/policies), when known, adds the access-rights and org cross-check. Pure.
 */
export function assessTykApis(
  apis: readonly TykApiView[],
  expected: TykApiExpectation,
  policies: readonly TykPolicySummary[] | undefined,
  apiId?: string,
): DoctorCheck[] {
  let candidates: readonly TykApiView[];
  if (apiId !== undefined) {
    const api = apis.find((candidate) => candidate.apiId === apiId);
    if (api === undefined) {
      return [
        check('FAIL', `tyk-api ${apiId}`, `Tyk has no API with id ${apiId} (it has ${apis.length === 0 ? 'none' : apis.map((a) => a.apiId).join(', ')})`, `load one: token-broker tyk api --config FILE --api-id ${apiId} ...`),
      ];
    }
    candidates = [api];
  } else {
    candidates = apis.filter((api) => pointsAtBroker(api, expected.jwksUrl));
    if (candidates.length === 0) {
      const jwtApis = apis.filter((api) => api.jwtEnabled).map((api) => api.apiId);
      return [
        check(
          'FAIL',
          'tyk-apis',
          `none of the ${apis.length} API(s) in Tyk takes keys from the broker's JWKS ${expected.jwksUrl}${jwtApis.length > 0 ? ` (JWT APIs: ${jwtApis.join(', ')})` : ''}`,
          'load an API definition from token-broker tyk api --config FILE --api-id ID ..., or check server.publicUrl',
        ),
      ];
    }
  }
  return candidates.flatMap((api) => {
    const problems = problemsOf(api, expected, policies);
    return problems.length > 0 ? problems : [check('OK', label(api), summaryOf(api, policies, expected))];
  });
}
