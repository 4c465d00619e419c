import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';

export interface HttpServerOptions {
  readonly port: number;
  readonly host: string;
  readonly headersTimeoutSeconds: number;
  readonly requestTimeoutSeconds: number;
  /** Serve HTTPS with this context; absent: plain HTTP. */
  readonly https?: {
    readonly secureContext: SecureContextOptions;
    /**
     * Ask clients for a certificate (mutual TLS). The handshake never fails for want of one: routes that need it
     * (POST /token) check `socket.authorized`, so kubelet probes, Prometheus and Tyk's JWKS fetch still connect.
     */
    readonly requestClientCertificate: boolean;
  };
}

export interface RunningServer {
  readonly server: Server | HttpsServer;
  readonly port: number;
  /** Puts a new certificate in force for new connections (HTTPS only); open connections keep theirs. */
  setSecureContext(secureContext: SecureContextOptions): void;
  /** Stops accepting connections, lets in-flight requests finish, closes idle keep-alive sockets. */
  shutdown(timeoutSeconds: number): Promise<'drained' | 'timed_out'>;
}

/**
 * Listens with short header and request timeouts, so a client that never finishes its headers is cut off
 * within seconds rather than holding a socket for minutes.
 */
export function listen(app: RequestListener, options: HttpServerOptions): Promise<RunningServer> {
  const httpOptions = {
    headersTimeout: options.headersTimeoutSeconds * 1000,
    requestTimeout: options.requestTimeoutSeconds * 1000,
    keepAliveTimeout: 5000,
    maxHeaderSize: 16 * 1024 + 4096,
    // Node checks the timeouts above on this interval; the default (30 s) would make them coarse.
    connectionsCheckingInterval: 1000,
  };
  const { https: tls } = options;
  const server: Server | HttpsServer =
    tls === undefined
      ? createServer(httpOptions)
      : createHttpsServer({
          ...httpOptions,
          ...tls.secureContext,
          requestCert: tls.requestClientCertificate,
          rejectUnauthorized: false,
          // A TLS handshake that has not finished by then holds a socket like slow headers would.
          handshakeTimeout: options.headersTimeoutSeconds * 1000,
        });
  // headersTimeout only starts with a request's first byte, so a connection that never sends one would be held
  // open for good: close it when it has sent nothing within the same time. One that has is Node's to time out.
  server.on('connection', (socket: Socket) => {
    const silent = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, options.headersTimeoutSeconds * 1000);
    silent.unref();
    socket.once('close', () => clearTimeout(silent));
  });
  // While draining, every response says Connection: close, so a keep-alive client leaves with its answer
  // instead of holding the process open until keepAliveTimeout. Registered before the app, which may answer synchronously.
  let draining = false;
  const inFlight = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      res.setHeader('Connection', 'close');
      return;
    }
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  server.on('request', app);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        server,
        port,
        setSecureContext(secureContext) {
          if (!('setSecureContext' in server)) throw new Error('setSecureContext: this listener serves plain HTTP');
          server.setSecureContext(secureContext);
        },
        shutdown(timeoutSeconds) {
          return new Promise((done) => {
            draining = true;
            for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
            const timer = setTimeout(() => {
              server.closeAllConnections();
              done('timed_out');
            }, timeoutSeconds * 1000);
            timer.unref();
            server.close(() => {
              clearTimeout(timer);
              done('drained');
            });
            server.closeIdleConnections();
          });
        },
      });
    });
  });
}
