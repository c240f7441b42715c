// A throw-away redis-server for tests: own temp dir, own port, always cleaned up.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";

import { connectRedis, type RedisClient } from "../../src/adapters/redis/client.js";
import { freePort } from "./ports.js";
import { forgetDir, removeDirAtExit, requireBinary, spawnTracked, tcpExchange, type SpawnedProcess } from "./processes.js";
import { waitUntil } from "./wait.js";

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  /** the data dir (AOF files live here); removed by stop() */
  dir: string;
  /** graceful shutdown (SIGTERM, SIGKILL after 3 s) and removal of the data dir; idempotent */
  stop(): Promise<void>;
  /** SIGKILL, like a crash; keeps the data dir so restart() can recover from the AOF */
  kill(): Promise<void>;
  /** stops it if running (gracefully), then starts it again on the same port and dir */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** AOF persistence (default true, the documented production setting) */
  appendonly?: boolean;
}

const READY_TIMEOUT_MS = 10_000;

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = requireBinary("redis-server", "redis-server");
  const appendonly = opts.appendonly ?? true;
  const dir = mkdtempSync(join(tmpdir(), "switchboard-redis-"));
  removeDirAtExit(dir);
  const port = await freePort();
  const logFile = join(dir, "redis.log");
  let proc: SpawnedProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const p = spawnTracked(
      bin,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        appendonly ? "yes" : "no",
        "--dir",
        dir,
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
        "--logfile",
        "", // stdout, i.e. redis.log
      ],
      { cwd: dir, logFile },
    );
    proc = p;
    try {
      await waitUntil(async () => (await tcpExchange(port, "PING\r\n", (r) => r.includes("\r\n"), 1000)).startsWith("+PONG"), {
        timeoutMs: READY_TIMEOUT_MS,
        what: `redis-server on port ${port} (log: ${logFile})`,
        abortIf: () => (p.isRunning() ? undefined : `exited with ${p.child.exitCode ?? p.child.signalCode}`),
      });
    } catch (err) {
      await p.kill();
      throw err;
    }
  };

  try {
    await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    forgetDir(dir);
    throw err;
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc?.stop(3000);
      rmSync(dir, { recursive: true, force: true });
      forgetDir(dir);
    },
    async kill() {
      await proc?.kill();
    },
    async restart() {
      if (stopped) throw new Error("redis: restart() after stop()");
      await proc?.stop(3000);
      await launch();
    },
  };
}

/**
 * A throw-away Redis and a client connected to it for the calling test file: started before its tests,
 * stopped after them. Returns the client (valid once the file's tests run).
 */
export function redisClientForFile(): () => RedisClient {
  let server: RedisServer | undefined;
  let client: RedisClient | undefined;
  before(async () => {
    server = await startRedis();
    client = await connectRedis(server.url, () => undefined);
  });
  after(async () => {
    client?.destroy();
    await server?.stop();
  });
  return () => {
    if (!client) throw new Error("redisClientForFile(): the client is ready only inside the file's tests");
    return client;
  };
}
