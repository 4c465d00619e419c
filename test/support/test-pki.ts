import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * Throwaway PKIs made with the real openssl CLI: a CA, server certificates for 127.0.0.1 and client
 * certificates, as cert-manager would write them (PEM, EC P-256). `.ci/run` installs openssl when missing.
 */

const OPENSSL = 'openssl';

/** Whether the openssl CLI can be run; the reason when it cannot. */
export function opensslAvailability(): { readonly ok: true } | { readonly ok: false; readonly reason: string } {
  const probe = spawnSync(OPENSSL, ['version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error !== undefined) return { ok: false, reason: `the openssl CLI cannot be run (${probe.error.message})` };
  if (probe.status !== 0) return { ok: false, reason: `"openssl version" exited with ${probe.status}: ${probe.stderr.trim()}` };
  return { ok: true };
}

function openssl(args: readonly string[], cwd: string): void {
  const result = spawnSync(OPENSSL, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

// A self-contained config, so the result does not depend on the system's openssl.cnf.
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = stand-in
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** PEM files of a throwaway PKI, in a temp dir removed by `remove()`. */
export interface TestPki {
  readonly dir: string;
  /** The CA's certificate: what a client trusts (an in-cluster broker finds it in ca.crt). */
  readonly caFile: string;
  /** A certificate for IP:127.0.0.1 that the CA signed, valid `serverDays` days. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** A second, unrelated CA: trusting it must not make the server trusted. */
  readonly otherCaFile: string;
  /** A new server certificate and key from the same CA, under `name`.crt / `name`.key (a renewal). */
  issueServerCertificate(name: string, days: number): { readonly certFile: string; readonly keyFile: string };
  /** A client certificate (clientAuth) signed by the CA, or by the unrelated CA with `byOtherCa`. */
  issueClientCertificate(name: string, options?: { readonly byOtherCa?: boolean }): { readonly certFile: string; readonly keyFile: string };
  remove(): void;
}

/** Generates a CA, an unrelated CA and a server certificate for 127.0.0.1 with the openssl CLI. */
export function generateTestPki(options: { readonly serverDays?: number } = {}): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'test-pki-'));
  const issue = (name: string, ca: string, extensions: string, subject: string, days: number) => {
    openssl(['req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject, '-config', 'openssl.cnf'], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', String(days), '-out', `${name}.crt`, '-extfile', 'openssl.cnf', '-extensions', extensions], dir);
    return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  };
  try {
    writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
    for (const ca of ['ca', 'other-ca']) {
      openssl(['req', '-x509', '-new', ...EC_KEY, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '30',
        '-subj', `/CN=${ca}-${randomUUID()}`, '-config', 'openssl.cnf', '-extensions', 'v3_ca'], dir);
    }
    issue('server', 'ca', 'v3_server', '/CN=127.0.0.1', options.serverDays ?? 2);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    otherCaFile: join(dir, 'other-ca.crt'),
    issueServerCertificate: (name, days) => issue(name, 'ca', 'v3_server', '/CN=127.0.0.1', days),
    issueClientCertificate: (name, clientOptions = {}) => issue(name, clientOptions.byOtherCa === true ? 'other-ca' : 'ca', 'v3_client', `/CN=${name}`, 2),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
