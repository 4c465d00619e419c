import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { KeepAliveAgents } from '../../src/server/kubernetes/keep-alive-agents.js';

/* What @kubernetes/client-node hands each request (a new agent built from the kubeconfig), and what the pool returns. */

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n');

describe('KeepAliveAgents: one pooled agent per TLS identity', () => {
  it('agents the client builds with the same TLS settings get one keep-alive agent, with those settings', () => {
    const agents = new KeepAliveAgents();
    const first = agents.reuse(new HttpsAgent({ ca: Buffer.from(CA), rejectUnauthorized: true, servername: 'kubernetes.default' }));
    const second = agents.reuse(new HttpsAgent({ ca: Buffer.from(CA), rejectUnauthorized: true, servername: 'kubernetes.default' }));
    assert.equal(first, second);
    assert.ok(first instanceof HttpsAgent);
    const options = (first as HttpsAgent).options;
    assert.deepEqual({ keepAlive: options.keepAlive, ca: options.ca, servername: options.servername, rejectUnauthorized: options.rejectUnauthorized }, {
      keepAlive: true,
      ca: CA,
      servername: 'kubernetes.default',
      rejectUnauthorized: true,
    });
    agents.destroy();
  });

  it('another CA, client certificate or verification setting is another identity: never a connection of the old one', () => {
    const agents = new KeepAliveAgents();
    const base = agents.reuse(new HttpsAgent({ ca: CA, cert: 'cert-1', key: 'key-1' }));
    for (const changed of [{ ca: Buffer.from('another CA'), cert: 'cert-1', key: 'key-1' }, { ca: CA, cert: 'cert-2', key: 'key-1' }, { ca: CA, cert: 'cert-1', key: 'key-1', rejectUnauthorized: false }]) {
      const next = agents.reuse(new HttpsAgent(changed));
      assert.notEqual(next, base);
      assert.equal((next as HttpsAgent).options.cert, changed.cert);
      // Back to the first settings: a new pool again, not the retired one.
      assert.notEqual(agents.reuse(new HttpsAgent({ ca: CA, cert: 'cert-1', key: 'key-1' })), base);
    }
    agents.destroy();
  });

  it('plain HTTP (a stand-in with insecure-skip-tls-verify) pools too; a proxy agent is passed through untouched', () => {
    const agents = new KeepAliveAgents();
    const plain = agents.reuse(new HttpAgent());
    assert.equal(agents.reuse(new HttpAgent()), plain);
    assert.ok(!(plain instanceof HttpsAgent));
    class ProxyAgent extends HttpAgent {}
    const proxy = new ProxyAgent();
    assert.equal(agents.reuse(proxy), proxy);
    agents.destroy();
  });
});
