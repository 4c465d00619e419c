import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Real redis-server processes on free loopback ports, one per test file, so tests are isolated from the
 * machine's Redis and can kill, pause and restart them for fault tests.
 */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGKILL: the server vanishes mid-conversation. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that holds connections open but never answers. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** Why Redis tests cannot run here, or undefined when they can. With CI=true a missing binary is a failure. */
export function redisUnavailableReason(): string | undefined {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.status === 0) return undefined;
  if (process.env.CI === 'true') throw new Error('CI=true but redis-server is not on PATH: .ci/run must install it');
  return 'redis-server is not on PATH (install Debian\'s redis-server to run the Redis tests)';
}

import { freePort } from './free-port.js';

export { freePort };

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
}

export async function startRedisServer(extraArgs: readonly string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tb-redis-'));
  let child: ChildProcess | undefined;

  async function launch(): Promise<void> {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes', ...extraArgs],
      { stdio: 'ignore' },
    );
    await waitForPort(port, 5000);
  }

  async function killChild(signal: NodeJS.Signals): Promise<void> {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      current.once('exit', () => resolve());
      current.kill(signal);
    });
  }

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill: () => killChild('SIGKILL'),
    restart: launch,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async stop() {
      child?.kill('SIGCONT');
      await killChild('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Three masters with cluster mode on, joined with redis-cli --cluster create; undefined when unsupported. */
export async function startRedisCluster(): Promise<{ readonly nodes: { host: string; port: number }[]; stop(): Promise<void> } | undefined> {
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      servers.push(await startRedisServer(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000']));
    }
  } catch {
    await Promise.all(servers.map((s) => s.stop()));
    return undefined;
  }
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  if (create.status !== 0) {
    await stopAll();
    return undefined;
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const info = spawnSync('redis-cli', ['-p', String(servers[0]?.port), 'cluster', 'info'], { encoding: 'utf8' });
    if (info.stdout.includes('cluster_state:ok')) {
      return { nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })), stop: stopAll };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stopAll();
  return undefined;
}
