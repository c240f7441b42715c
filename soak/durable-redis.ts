// A redis-server for the soak run with the strict production persistence setting: AOF on with
// `appendfsync always` (test/support/redis.ts keeps Redis's default `everysec` and has no option for
// it). Its data dir is given by the caller and survives the run, so the AOF can be inspected.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { freePort } from "../test/support/ports.js";
import { requireBinary, spawnTracked, tcpExchange, type SpawnedProcess } from "../test/support/processes.js";
import { waitUntil } from "../test/support/wait.js";

export interface DurableRedis {
  url: string;
  port: number;
  dir: string;
  logFile: string;
  /** starts it (again) on the same port and dir; resolves once it answers PING (AOF loaded) */
  start(): Promise<void>;
  /** SIGKILL, like a crash */
  kill(): Promise<void>;
  /** SIGTERM (Redis fsyncs and exits), SIGKILL after graceMs */
  stop(graceMs?: number): Promise<void>;
  running(): boolean;
}

export async function createDurableRedis(dir: string): Promise<DurableRedis> {
  const bin = requireBinary("redis-server", "redis-server");
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const logFile = join(dir, "redis.log");
  let proc: SpawnedProcess | undefined;

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    logFile,
    async start() {
      if (proc?.isRunning()) throw new Error("redis already running");
      const p = spawnTracked(
        bin,
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir, "--daemonize", "no", "--protected-mode", "no", "--logfile", ""],
        { cwd: dir, logFile },
      );
      proc = p;
      await waitUntil(async () => (await tcpExchange(port, "PING\r\n", (r) => r.includes("\r\n"), 1000)).startsWith("+PONG"), {
        timeoutMs: 30_000,
        what: `redis-server on port ${port} (log: ${logFile})`,
        abortIf: () => (p.isRunning() ? undefined : `exited with ${p.child.exitCode ?? p.child.signalCode}`),
      });
    },
    async kill() {
      await proc?.kill();
    },
    async stop(graceMs = 5000) {
      await proc?.stop(graceMs);
    },
    running: () => proc?.isRunning() ?? false,
  };
}
