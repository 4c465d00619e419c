import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';

/** The subset of fetch that openid-client and the key sets call. */
export type IssuerFetch = (url: string, init?: { method?: string; headers?: Record<string, string> | Headers; signal?: AbortSignal | null }) => Promise<Response>;

export interface IssuerFetchOptions {
  /** PEM CA bundle trusted in addition to nothing else: in-cluster API servers use a private CA. */
  readonly caFile?: string | undefined;
  /** Re-read on every request: the kubelet rotates projected tokens in place. */
  readonly bearerTokenFile?: string | undefined;
  /** The origins the bearer token may be sent to (the issuer's configured ones); to any other, none is sent. */
  readonly credentialOrigins: ReadonlySet<string>;
  readonly timeoutMs?: number;
  /** Discovery documents and key sets are small; a larger answer is refused rather than buffered. */
  readonly maxBytes?: number;
}

/**
 * An HTTP GET for discovery and JWKS with the issuer's own CA and bearer token, a timeout and a size limit.
 * Redirects are not followed (a 3xx is an answer like any other, and fails as not OK): a key set must come from the
 * configured or discovered address itself, and the bearer token never follows a Location header. The bearer token
 * is attached only for `credentialOrigins`.
 */
export function createIssuerFetch(options: IssuerFetchOptions): IssuerFetch {
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  return async (url, init) => {
    const target = new URL(url);
    const headers: Record<string, string> = { accept: 'application/json' };
    new Headers(init?.headers ?? {}).forEach((value, key) => {
      headers[key] = value;
    });
    // The credential goes only where the operator configured it to; a fetch elsewhere goes without it.
    if (options.bearerTokenFile !== undefined && options.credentialOrigins.has(target.origin)) {
      headers.authorization = `Bearer ${(await readFile(options.bearerTokenFile, 'utf8')).trim()}`;
    }
    const transport = target.protocol === 'https:' ? https : http;
    const requestOptions: https.RequestOptions = { method: init?.method ?? 'GET', headers, timeout: timeoutMs };
    // Read on every fetch (fetches are rare): a rotated cluster CA is picked up, a failed read is not remembered.
    if (options.caFile !== undefined) requestOptions.ca = await readFile(options.caFile, 'utf8');
    return new Promise<Response>((resolve, reject) => {
      // Settled once. Every failure ends the exchange through here: destroying a request with an error after its
      // response has begun emits that error where no listener waits for it (an oversized JWKS crashed the process).
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        reject(error);
        request.destroy();
      };
      const request = transport.request(target, requestOptions, (response: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            fail(new Error(`response from ${target.origin} exceeds ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          if (settled) return;
          settled = true;
          const responseHeaders = new Headers();
          for (const [key, value] of Object.entries(response.headers)) {
            if (typeof value === 'string') responseHeaders.set(key, value);
            else if (Array.isArray(value)) for (const v of value) responseHeaders.append(key, v);
          }
          const status = response.statusCode ?? 502;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, headers: responseHeaders }));
        });
        response.on('error', fail);
      });
      request.on('timeout', () => fail(new Error(`no answer from ${target.origin} within ${timeoutMs} ms`)));
      // The socket timeout only bounds silence: a server dripping a byte at a time would hold the fetch for as long as
      // its 1 MiB lasts. The whole answer must arrive within the same time.
      const deadline = setTimeout(() => fail(new Error(`no complete answer from ${target.origin} within ${timeoutMs} ms`)), timeoutMs);
      deadline.unref();
      request.once('close', () => clearTimeout(deadline));
      request.on('error', fail);
      init?.signal?.addEventListener('abort', () => fail(new Error('aborted')), { once: true });
      request.end();
    });
  };
}
