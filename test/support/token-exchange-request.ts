import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../src/server/protocol.js';

export interface TokenEndpointAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/**
 * One POST /token over real HTTP with the RFC 8693 form a workflow step sends (grant type, subject token type,
 * subject token), bounded by a 10 s timeout: the request the tests of a running broker (`serve`) make.
 */
export async function postTokenExchange(baseUrl: string, subjectToken: string, headers: Readonly<Record<string, string>> = {}): Promise<TokenEndpointAnswer> {
  const res = await fetch(`${baseUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ grant_type: GRANT_TYPE_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT, subject_token: subjectToken }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
