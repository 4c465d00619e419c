/**
 * Preloaded with `node --import tsx --import ./test/support/deny-network.ts` into a child process that must not
 * reach the network (a third-party CLI the tests run): every TCP or TLS connection to anything but loopback throws
 * before a packet is sent (before its host name is even looked up), and is reported on stderr with
 * DENIED_CONNECTION_MARKER, so a test fails on it even when the child swallows the error (telemetry does).
 *
 * `DENY_NETWORK_ALSO` (comma-separated hosts) denies some loopback addresses too, so a test can show that the guard
 * intercepts each way of connecting without sending anything anywhere.
 */
import net from 'node:net';

export const DENIED_CONNECTION_MARKER = 'deny-network: refused a connection to';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\]|localhost)$/i;
const alsoDenied = new Set((process.env.DENY_NETWORK_ALSO ?? '').split(',').filter((host) => host !== ''));

/** Where a Socket#connect call goes: a host, or an IPC path (local, allowed). */
function targetOf(args: readonly unknown[]): { readonly host?: string; readonly path?: string } {
  // net.connect() hands Socket#connect its normalized arguments as one array: [options, callback].
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'object' && first !== null) {
    const options = first as { host?: unknown; path?: unknown };
    if (typeof options.path === 'string') return { path: options.path };
    return { host: typeof options.host === 'string' ? options.host : 'localhost' };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first };
  return { host: typeof args[1] === 'string' ? args[1] : 'localhost' };
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  const { host } = targetOf(args);
  if (host !== undefined && (!LOOPBACK.test(host) || alsoDenied.has(host))) {
    process.stderr.write(`${DENIED_CONNECTION_MARKER} ${host}\n`);
    throw new Error(`deny-network: no connection to ${host} from this process`);
  }
  return Reflect.apply(connect, this, args) as net.Socket;
} as typeof connect;
