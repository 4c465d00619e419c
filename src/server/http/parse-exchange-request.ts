import { invalidRequest, BrokerError } from '../errors.js';
import { ACCEPTED_SUBJECT_TOKEN_TYPES, GRANT_TYPE_TOKEN_EXCHANGE } from '../protocol.js';
import type { ExchangeRequest } from '../exchange/exchange-request.js';
import { parseResourceIndicator } from '../rules/resource-indicator.js';

const KNOWN_PARAMETERS = new Set([
  'grant_type',
  'subject_token',
  'subject_token_type',
  'audience',
  'scope',
  'requested_token_type',
  'resource',
  'actor_token',
  'actor_token_type',
]);

function single(form: Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    // RFC 8707 allows several resources; one token here serves one API, so say how to get the others.
    if (name === 'resource' && Array.isArray(value)) {
      throw invalidRequest('invalid_request', 'The "resource" parameter must be given at most once: exchange once per API.');
    }
    throw invalidRequest('invalid_request', `The "${name}" parameter must be given at most once.`);
  }
  return value;
}

/**
 * Turns a form body (RFC 8693 section 2.1) or a bare `Authorization: Bearer` header into an exchange
 * request. Pure. Repeated parameters, actor tokens and unknown grant types are refused precisely.
 */
export function parseExchangeRequest(form: Record<string, unknown>, authorization: string | undefined): ExchangeRequest {
  for (const name of Object.keys(form)) {
    if (!KNOWN_PARAMETERS.has(name)) continue;
    single(form, name);
  }
  const grantType = single(form, 'grant_type');
  let subjectToken = single(form, 'subject_token');
  const bearer = authorization !== undefined ? /^Bearer ([^\s]+)\s*$/i.exec(authorization)?.[1] : undefined;

  if (subjectToken !== undefined && bearer !== undefined) {
    // Two credentials in one request: refuse rather than guess which one the caller meant.
    throw invalidRequest('invalid_request', 'Send the subject token once: either the "subject_token" parameter or Authorization: Bearer.');
  }
  if (subjectToken === undefined && bearer !== undefined) {
    // curl-friendly form: the subject token in the Authorization header, the grant implied.
    if (grantType !== undefined && grantType !== GRANT_TYPE_TOKEN_EXCHANGE) {
      throw new BrokerError('unsupported_grant_type', {
        oauthError: 'unsupported_grant_type',
        status: 400,
        description: `Only ${GRANT_TYPE_TOKEN_EXCHANGE} is supported.`,
      });
    }
    subjectToken = bearer;
  } else {
    if (grantType === undefined) throw invalidRequest('invalid_request', 'The "grant_type" parameter is required.');
    if (grantType !== GRANT_TYPE_TOKEN_EXCHANGE) {
      throw new BrokerError('unsupported_grant_type', {
        oauthError: 'unsupported_grant_type',
        status: 400,
        description: `Only ${GRANT_TYPE_TOKEN_EXCHANGE} is supported.`,
      });
    }
    if (subjectToken === undefined || subjectToken === '') {
      throw invalidRequest('invalid_request', 'The "subject_token" parameter is required (or send the token as Authorization: Bearer).');
    }
    const subjectTokenType = single(form, 'subject_token_type');
    if (subjectTokenType === undefined) throw invalidRequest('invalid_request', 'The "subject_token_type" parameter is required.');
    if (!ACCEPTED_SUBJECT_TOKEN_TYPES.includes(subjectTokenType)) {
      throw invalidRequest('unsupported_token_type', `subject_token_type must be one of ${ACCEPTED_SUBJECT_TOKEN_TYPES.join(', ')}.`);
    }
  }
  if (form.actor_token !== undefined || form.actor_token_type !== undefined) {
    throw invalidRequest('invalid_request', 'Delegation (actor_token) is not supported.');
  }
  const resourceText = single(form, 'resource');
  const resource = resourceText === undefined ? undefined : parseResourceIndicator(resourceText);
  const scopeText = single(form, 'scope');
  const scope = scopeText === undefined ? undefined : scopeText.split(' ').filter((s) => s !== '');
  if (scope !== undefined && scope.length === 0) throw invalidRequest('invalid_request', 'The "scope" parameter is empty.');
  const audience = single(form, 'audience');
  if (audience === '') throw invalidRequest('invalid_request', 'The "audience" parameter is empty.');
  return {
    subjectToken,
    audience,
    scope,
    resource,
    requestedTokenType: single(form, 'requested_token_type'),
  };
}
