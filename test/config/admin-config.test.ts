import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/server/config/validate-config.js';

/*
 * The `admin` block as validation sees it: loopback by default, never the public port (also when PORT moves it),
 * and a warning, not a refusal, when it is bound beyond loopback without mutual TLS.
 */

const base = {
  server: { port: 8080, publicUrl: 'https://token-broker.example' },
  issuers: [{ name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'] }],
  signing: { keysDir: '/etc/token-broker/keys' },
  rules: [{ name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] }],
};
const tls = { certFile: '/etc/admin/tls.crt', keyFile: '/etc/admin/tls.key', clientCaFile: '/etc/admin/ca.crt' };

describe('config: admin', () => {
  it('binds 127.0.0.1 unless admin.host says otherwise, with no warning', () => {
    const result = validateConfig({ ...base, admin: { port: 9090, bearerTokenFile: '/etc/admin/secret' } });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.config.admin?.host, '127.0.0.1');
    assert.deepEqual(result.warnings, []);
  });

  it('refuses admin.port equal to server.port, naming admin.port', () => {
    const result = validateConfig({ ...base, admin: { port: 8080, bearerTokenFile: '/etc/admin/secret' } });
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.problems, [{ path: 'admin.port', message: 'must differ from server.port: the admin endpoint is never served on the public listener' }]);
  });

  it('warns when admin.host is beyond loopback without admin.tls; loopback hosts and mutual TLS do not warn', () => {
    for (const [admin, warns] of [
      [{ host: '0.0.0.0', bearerTokenFile: '/s' }, true],
      [{ host: '::', bearerTokenFile: '/s' }, true],
      [{ host: '10.0.0.7', bearerTokenFile: '/s' }, true],
      [{ host: '127.0.0.1.example.com', bearerTokenFile: '/s' }, true],
      [{ host: 'admin.internal', bearerTokenFile: '/s' }, true],
      [{ host: '0.0.0.0', tls }, false],
      [{ host: '0.0.0.0', bearerTokenFile: '/s', tls }, false],
      [{ host: '127.0.0.1', bearerTokenFile: '/s' }, false],
      [{ host: '127.1.2.3', bearerTokenFile: '/s' }, false],
      [{ host: '::1', bearerTokenFile: '/s' }, false],
      [{ host: 'localhost', bearerTokenFile: '/s' }, false],
    ] as const) {
      const result = validateConfig({ ...base, admin: { port: 9090, ...admin } });
      assert.ok(result.ok, JSON.stringify(result));
      const adminWarnings = result.warnings.filter((w) => w.startsWith('admin.host: '));
      assert.equal(adminWarnings.length, warns ? 1 : 0, JSON.stringify(admin));
      if (warns) assert.match(adminWarnings[0] ?? '', /is not a loopback address and admin\.tls is not set/);
    }
  });
});
