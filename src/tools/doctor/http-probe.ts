/** The fetch the doctor uses for the broker's JWKS and Tyk; injected so tests can count or break requests. */
export type ProbeFetch = (url: string, init: { headers: Record<string, string>; signal: AbortSignal; redirect: 'manual' }) => Promise<Response>;

/** An HTTP answer, its body parsed as JSON when it is JSON. */
export interface ProbeAnswer {
  readonly status: number;
  /** The parsed body, or undefined when it is not JSON. */
  readonly json: unknown;
}

/** Why a request got no answer, in words an operator can act on: "connection refused", "no answer within 5 s". */
export function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return `no answer within ${timeoutMs / 1000} s`;
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const names: Readonly<Record<string, string>> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    ECONNRESET: 'connection reset',
    UND_ERR_SOCKET: 'connection closed without an answer',
    EAI_AGAIN: 'DNS lookup failed',
  };
  if (code !== undefined) return names[code] ?? code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * GETs `url` with a deadline and no redirects (a JWKS or an admin API that redirects is misconfigured, and a
 * redirect could carry the Tyk secret elsewhere). Rejects with a readable message when nothing answers.
 */
export async function probeJson(fetchImpl: ProbeFetch, url: string, headers: Record<string, string>, timeoutMs: number): Promise<ProbeAnswer> {
  let response: Response;
  try {
    response = await fetchImpl(url, { headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch (error) {
    throw new Error(describeNetworkError(error, timeoutMs), { cause: error });
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new Error(describeNetworkError(error, timeoutMs), { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json };
}
