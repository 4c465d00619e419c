import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubernetesClient } from './kube-config.js';
import type { KeepAliveAgents } from './keep-alive-agents.js';

/** What the API server answered: the status and the body, not yet parsed. */
export interface ApiAnswer {
  readonly status: number;
  readonly body: string;
}

/** A request that failed on a pooled connection the server had already closed; retried once, on a new one. */
class StaleConnectionError extends Error {
  constructor() {
    super('the API server closed the pooled connection');
  }
}

/** An answer bigger than any object the broker reads is not read to the end (a pod is a few KiB). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * GET on the Kubernetes API with what @kubernetes/client-node would send, without its request pipeline: the same URL
 * (the kubeconfig's server), the same authentication (the client's applySecurityAuthentication, so tokens, token
 * files, exec plugins and client certificates work as they do for the client), over the pooled keep-alive agent.
 * The client's generated code and model deserializer cost more CPU than the lookup itself (bench/README.md, issue
 * 18); the answer is parsed by kubernetes-answers.ts either way. Rejects on a network error or an oversized answer.
 */
export function createApiGet(kubeConfig: KubeConfig, agents: KeepAliveAgents): (path: string, signal: AbortSignal) => Promise<ApiAnswer> {
  const { HttpMethod, RequestContext } = kubernetesClient();
  const server = kubeConfig.getCurrentCluster()?.server ?? '';
  const send = server.startsWith('https:') ? httpsRequest : httpRequest;
  return async (path, signal) => {
    const context = new RequestContext(`${server}${path}`, HttpMethod.GET);
    context.setHeaderParam('Accept', 'application/json');
    await kubeConfig.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    const agent = fresh === undefined ? undefined : agents.reuse(fresh);
    const once = (): Promise<ApiAnswer> =>
      new Promise<ApiAnswer>((resolve, reject) => {
        const outgoing = send(context.getUrl(), { method: 'GET', headers: context.getHeaders(), signal, ...(agent !== undefined && { agent }) }, (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) {
              outgoing.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks, size).toString('utf8') }));
          response.on('error', reject);
        });
        outgoing.on('error', (error: NodeJS.ErrnoException) => reject(outgoing.reusedSocket && error.code === 'ECONNRESET' ? new StaleConnectionError() : error));
        outgoing.end();
      });
    try {
      return await once();
    } catch (error) {
      // The server closed a pooled connection just as the request went out on it (its idle timeout raced ours): a
      // GET changes nothing, so it is sent once more, on a new connection. Node's documented pattern
      // (request.reusedSocket); any other failure is the caller's to classify.
      if (!(error instanceof StaleConnectionError) || signal.aborted) throw error;
      return once();
    }
  };
}
