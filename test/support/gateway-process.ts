// The gateway as its own process (the real entry point through tsx), for tests that SIGKILL, SIGTERM
// and restart it. Same env each start, so a restart is the same gateway coming back.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";
import { killAtExit, removeDirAtExit, spawnTracked, type SpawnedProcess } from "./processes.js";
import { waitUntil } from "./wait.js";

export const PROCESS_ADMIN_TOKEN = "process-admin-token-0123456789";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface GatewayProcess {
  url: string;
  port: number;
  logFile: string;
  /** Starts (again) with the same env; resolves when /readyz answers 200. */
  start(extraEnv?: Record<string, string>): Promise<void>;
  /** SIGKILL: no cleanup at all, as in a crash. */
  kill(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  terminate(graceMs?: number): Promise<number | null>;
  running(): boolean;
  pid(): number | undefined;
  ready(): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Waits until /readyz says the component is connected. */
  waitConnected(timeoutMs?: number): Promise<void>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  post(path: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }>;
  log(): string;
}

/** `built: true` runs dist/src/main.js (npm run build first), as production does; else src/ through tsx. */
export async function startGatewayProcess(env: Record<string, string>, opts: { built?: boolean; nodeArgs?: string[] } = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "sb-gw-"));
  removeDirAtExit(dir);
  const logFile = join(dir, "gateway.log");
  const url = `http://127.0.0.1:${port}`;
  let proc: SpawnedProcess | undefined;

  const gp: GatewayProcess = {
    url,
    port,
    logFile,
    async start(extraEnv = {}) {
      if (proc?.isRunning()) throw new Error("gateway already running");
      const entry = opts.built ? ["dist/src/main.js"] : ["--import", "tsx", "src/main.ts"];
      proc = spawnTracked(process.execPath, [...(opts.nodeArgs ?? []), ...entry], {
        cwd: ROOT,
        logFile,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ADMIN_TOKEN: PROCESS_ADMIN_TOKEN,
          HTTP_HOST: "127.0.0.1",
          HTTP_PORT: String(port),
          LOG_LEVEL: "info",
          JOURNAL_DIR: join(dir, "journal"),
          MEDIA_DIR: join(dir, "media"),
          USER_MESSAGES_PER_MINUTE: "0", // tests send in bursts no person would
          ...env,
          ...extraEnv,
        },
      });
      await waitUntil(
        async () => {
          if (!proc?.isRunning()) throw new Error(`gateway exited during start; log:\n${gp.log().slice(-3000)}`);
          try {
            return (await gp.ready()).status === 200;
          } catch {
            return false;
          }
        },
        { timeoutMs: 20_000, what: "gateway /readyz" },
      );
    },
    async kill() {
      await proc?.kill();
    },
    async terminate(graceMs = 15_000) {
      if (!proc) return null;
      await proc.stop(graceMs);
      return proc.child.exitCode;
    },
    running: () => proc?.isRunning() ?? false,
    pid: () => (proc?.isRunning() ? proc.child.pid : undefined),
    async ready() {
      // The details (Redis, journal, component link) need the admin token.
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000), headers: { authorization: `Bearer ${PROCESS_ADMIN_TOKEN}` } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async waitConnected(timeoutMs = 15_000) {
      await waitUntil(
        async () => {
          try {
            const r = await gp.ready();
            return (r.body.xmpp as { connected?: boolean } | undefined)?.connected === true;
          } catch {
            return false;
          }
        },
        { timeoutMs, what: "component connected" },
      );
    },
    async admin(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${PROCESS_ADMIN_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
    },
    async post(path, body, headers) {
      const res = await fetch(url + path, { method: "POST", headers, body });
      return { status: res.status, text: await res.text() };
    },
    log: () => {
      try {
        return readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
  };
  return gp;
}

/**
 * Runs the real entry point (as `npm start` does, through tsx) with only `env` (plus PATH, HOME and a
 * silent log) until it exits; resolves with its exit code and stderr. A generous bound: tsx compiles
 * src/ at start, seconds on a busy machine.
 */
export function runMainToExit(env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: "silent", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    // killed if the test's process ends first (e.g. a timeout): no gateway left retrying a stopped server
    killAtExit(child);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the gateway did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
