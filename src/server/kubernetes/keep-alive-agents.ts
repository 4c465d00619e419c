import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';

/** The TLS settings an agent connects with: what must match for a pooled connection to stand in for a new one. */
const TLS_OPTIONS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** Idle pooled connections are closed after this (every lookup is bounded by 2 s, far below it). */
const IDLE_SOCKET_MS = 30_000;

function sameOption(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => sameOption(item, b[i]));
  return a === b;
}

/**
 * One keep-alive agent for the Kubernetes API, in place of the agent @kubernetes/client-node builds for every request.
 * The client (1.4) makes a new http(s).Agent per call in applySecurityAuthentication (kubernetes-client/javascript
 * issue 2893), so each lookup would open a new TCP connection and, against a real API server, do a new TLS handshake:
 * in the bench that was most of the CPU of an exchange with pod binding. `reuse` takes the agent the client made for
 * this request and returns the pooled one with the same TLS settings (CA, client certificate and key, verification,
 * server name), creating it on first use; when the client's settings change (a rotated client certificate, read
 * again from its file by the client), a new pooled agent takes over and the old one is closed once idle. An agent of
 * another kind (a proxy agent) is returned as it is.
 */
export class KeepAliveAgents {
  private pooled: { readonly options: AgentOptions; readonly agent: HttpAgent } | undefined;
  private readonly retired: HttpAgent[] = [];

  reuse(fresh: HttpAgent): HttpAgent {
    const secure = fresh.constructor === HttpsAgent;
    if (!secure && fresh.constructor !== HttpAgent) return fresh;
    const options = secure ? (fresh as HttpsAgent).options : {};
    const current = this.pooled;
    if (current !== undefined && (current.agent instanceof HttpsAgent) === secure && TLS_OPTIONS.every((name) => sameOption(current.options[name], options[name]))) {
      return current.agent;
    }
    if (current !== undefined) this.retire(current.agent);
    const settings = { ...Object.fromEntries(TLS_OPTIONS.filter((name) => options[name] !== undefined).map((name) => [name, options[name]])), keepAlive: true, timeout: IDLE_SOCKET_MS };
    const agent = secure ? new HttpsAgent(settings) : new HttpAgent(settings);
    this.pooled = { options, agent };
    return agent;
  }

  /** Closes every pooled connection (the source is closing). */
  destroy(): void {
    this.pooled?.agent.destroy();
    this.pooled = undefined;
    for (const agent of this.retired.splice(0)) agent.destroy();
  }

  /** Requests still running on a replaced agent finish; its sockets close as they fall idle. */
  private retire(agent: HttpAgent): void {
    agent.on('free', (socket) => socket.destroy());
    for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    this.retired.push(agent);
  }
}
