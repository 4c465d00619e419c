import { readFile } from 'node:fs/promises';
import { createHash, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

/** Where the listener's certificate, key and optional client CA live (config server.tls). */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile?: string | undefined;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** One consistent read of the TLS files, checked to form a usable server context. */
export interface TlsCredentials {
  /** What `https.createServer` and `server.setSecureContext` take. */
  readonly secureContext: SecureContextOptions;
  /** The serving (leaf) certificate's validity, ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The leaf's SHA-256 fingerprint and subject, for logs: public facts, unlike the key. */
  readonly fingerprint256: string;
  readonly subject: string;
  /**
   * SHA-256 over every file's bytes: equal when nothing changed, so a re-read that finds the same files does
   * nothing. Never logged (it covers the private key).
   */
  readonly contentDigest: string;
}

/** A TLS file that cannot be used; the message names the file and never carries its content. */
export class TlsFilesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFilesError';
  }
}

async function readNamed(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TlsFilesError(`cannot read the ${what} ${path}: ${code ?? (error instanceof Error ? error.message : String(error))}`);
  }
}

/**
 * Reads the certificate chain, key and client CA, and proves they form a server context (the key matches the
 * leaf, every PEM parses) before anything serves them: a half-written renewal fails here, not in a handshake.
 */
export async function readTlsCredentials(files: TlsFiles): Promise<TlsCredentials> {
  const [cert, key, ca] = await Promise.all([
    readNamed(files.certFile, 'certificate'),
    readNamed(files.keyFile, 'private key'),
    files.clientCaFile === undefined ? Promise.resolve(undefined) : readNamed(files.clientCaFile, 'client CA bundle'),
  ]);
  let leaf: X509Certificate;
  try {
    // The first certificate of the chain is the one served to clients.
    leaf = new X509Certificate(cert);
  } catch {
    throw new TlsFilesError(`the certificate ${files.certFile} holds no PEM certificate`);
  }
  const secureContext: SecureContextOptions = { cert, key, minVersion: files.minVersion, ...(ca === undefined ? {} : { ca }) };
  try {
    createSecureContext(secureContext);
  } catch (error) {
    // OpenSSL's messages name the problem ("key values mismatch", "bad decrypt"), never the bytes.
    const reason = error instanceof Error ? error.message : String(error);
    throw new TlsFilesError(`${files.certFile}, ${files.keyFile}${files.clientCaFile === undefined ? '' : `, ${files.clientCaFile}`} do not form a TLS server context: ${reason}`);
  }
  const digest = createHash('sha256');
  for (const part of [cert, key, ca ?? Buffer.alloc(0)]) digest.update(createHash('sha256').update(part).digest());
  return {
    secureContext,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    fingerprint256: leaf.fingerprint256,
    subject: leaf.subject.replaceAll('\n', ', '),
    contentDigest: digest.digest('hex'),
  };
}
