// Shared helpers for the server fixtures: spawn with cleanup at process exit,
// stop with SIGTERM then SIGKILL, wait for TCP ports, find binaries.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

interface Tracked {
  child: ChildProcess;
  /** kill the whole process group (spawned detached) */
  group: boolean;
}

const children = new Set<Tracked>();
const dirs = new Set<string>();
let hooksInstalled = false;

function killTrackedSync(): void {
  for (const t of children) {
    const pid = t.child.pid;
    if (pid === undefined) continue;
    if (!t.group && (t.child.exitCode !== null || t.child.signalCode !== null)) continue;
    try {
      process.kill(t.group ? -pid : pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  children.clear();
  for (const d of dirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  dirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killTrackedSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      killTrackedSync();
      // re-raise with the default disposition now that our handler is gone
      process.kill(process.pid, sig);
    });
  }
}

/** Remove `dir` at process exit unless it was removed before (see forgetDir). */
export function removeDirAtExit(dir: string): void {
  installHooks();
  dirs.add(dir);
}

export function forgetDir(dir: string): void {
  dirs.delete(dir);
}

export interface SpawnedProcess {
  child: ChildProcess;
  /** resolves when the process has exited (immediately if it already has) */
  exited: Promise<void>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL; resolves once it has exited */
  kill(): Promise<void>;
}

/**
 * SIGKILLs `child` when this process exits or is signalled (as spawnTracked does), unless it has
 * exited by then: for processes spawned with their own stdio handling.
 */
export function killAtExit(child: ChildProcess): void {
  installHooks();
  const tracked: Tracked = { child, group: false };
  children.add(tracked);
  child.once("exit", () => children.delete(tracked));
}

/**
 * Spawns `cmd` with stdout/stderr appended to `logFile`, unref'd (a forgotten server
 * does not keep the test process alive) and killed with SIGKILL when the process exits.
 * `group: true` spawns it in its own process group and signals the whole group
 * (for wrappers such as ejabberdctl → su → erl → beam).
 */
export function spawnTracked(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string; group?: boolean; uid?: number; gid?: number }): SpawnedProcess {
  installHooks();
  const fd = openSync(opts.logFile, "a");
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", fd, fd],
    detached: opts.group === true,
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  };
  const child = spawn(cmd, args, spawnOpts);
  closeSync(fd);
  const tracked: Tracked = { child, group: opts.group === true };
  children.add(tracked);
  child.unref();

  let done = false;
  const exited = new Promise<void>((resolve) => {
    const finish = (): void => {
      done = true;
      // a group may outlive its leader: keep it for the exit-time SIGKILL
      if (!tracked.group) children.delete(tracked);
      resolve();
    };
    child.once("exit", finish);
    child.once("error", finish); // e.g. ENOENT; exit may not follow
  });

  const groupAlive = (): boolean => {
    if (!tracked.group || child.pid === undefined) return false;
    try {
      process.kill(-child.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  // the leader's exit, and for a group also every other member's (polled)
  const allExited = async (): Promise<void> => {
    await exited;
    while (groupAlive()) await sleep(25);
  };

  const signal = (sig: NodeJS.Signals): void => {
    if (child.pid === undefined || (done && !groupAlive())) return;
    try {
      process.kill(tracked.group ? -child.pid : child.pid, sig);
    } catch {
      /* gone */
    }
  };

  return {
    child,
    exited,
    isRunning: () => !done,
    async stop(graceMs = 3000) {
      if (done && !groupAlive()) return;
      child.ref(); // keep the event loop alive while we wait for the exit
      signal("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), graceMs);
      });
      const outcome = await Promise.race([allExited().then(() => "exited" as const), timedOut]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        signal("SIGKILL");
        await allExited();
      }
    },
    async kill() {
      if (!done) child.ref();
      signal("SIGKILL");
      await allExited();
    },
  };
}

/** Full path of `name` on PATH (also /usr/sbin and /sbin), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirsOnPath = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const extra of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) {
    if (!dirsOnPath.includes(extra)) dirsOnPath.push(extra);
  }
  for (const d of dirsOnPath) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function requireBinary(name: string, debianPackage: string): string {
  const p = findBinary(name);
  if (p === undefined) {
    throw new Error(`${name} not found: install the Debian package ${debianPackage} (apt-get install ${debianPackage})`);
  }
  return p;
}

/** true when a TCP connection to 127.0.0.1:port succeeds */
export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * Sends `payload` to 127.0.0.1:port and resolves with what comes back once `until`
 * matches the accumulated reply (or with what arrived when the socket closes / times out).
 */
export function tcpExchange(port: number, payload: string, until: (reply: string) => boolean, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    let reply = "";
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(reply);
    };
    sock.setTimeout(timeoutMs, done);
    sock.once("connect", () => sock.write(payload));
    sock.on("data", (d: Buffer) => {
      reply += d.toString("utf8");
      if (until(reply)) done();
    });
    sock.once("error", done);
    sock.once("close", done);
  });
}

/** The last `lines` lines of a text file ("" if unreadable), for error messages. */
export function tailFile(path: string, lines = 20): string {
  try {
    const text = readFileSync(path, "utf8").trimEnd();
    return text.split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
