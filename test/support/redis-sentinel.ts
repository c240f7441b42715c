// Redis with Sentinel for tests: a primary, a replica and three Sentinels, all Debian's redis-server (the
// Sentinels started with --sentinel: the package ships no redis-sentinel binary), on free loopback ports
// in one temp dir. Each node has a config file of its own, writable, because the Sentinels rewrite theirs
// and the data nodes' (docs/facts/redis.md "Test topology").
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";

import { freePort } from "./ports.js";
import { forgetDir, removeDirAtExit, requireBinary, spawnTracked, tailFile, tcpExchange, type SpawnedProcess } from "./processes.js";
import { until, waitUntil } from "./wait.js";

export interface DataNode {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  logFile: string;
  running(): boolean;
  /** SIGKILL, like a crash or a lost host. */
  kill(): Promise<void>;
  /** SIGSTOP: the process stays connected but answers nothing (a hung host). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** Starts it again (after kill), as a replica of `of` when given: the way an old primary should come back. */
  restart(of?: DataNode): Promise<void>;
}

export interface SentinelTopology {
  /** The name the Sentinels monitor the primary under (REDIS_SENTINEL_NAME). */
  name: string;
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" (REDIS_SENTINELS). */
  sentinels: string;
  /** The first primary, then the first replica. */
  nodes: [DataNode, DataNode];
  /** The data node every Sentinel names as the primary now. */
  primary(): Promise<DataNode>;
  /** The data node that is not the primary. */
  replica(): Promise<DataNode>;
  /**
   * SIGKILLs the primary and waits until every Sentinel names the replica instead and it takes writes
   * (the Sentinels' +switch-master); `ms`: from the kill until then.
   */
  failover(): Promise<{ from: DataNode; to: DataNode; ms: number }>;
  /** Every process stopped, the dir removed; idempotent. */
  stop(): Promise<void>;
}

export interface SentinelTopologyOptions {
  name?: string;
  /** sentinel down-after-milliseconds (default 1000: a failover takes a few seconds). */
  downAfterMs?: number;
  /** requirepass of the primary and replica (REDIS_PASSWORD). */
  password?: string;
  /** requirepass of the Sentinels (REDIS_SENTINEL_PASSWORD). */
  sentinelPassword?: string;
}

const READY_TIMEOUT_MS = 20_000;

/** AUTH first when there is a password; its "+OK" is dropped from the reply. */
const authed = (password: string | undefined, command: string) => (password ? `AUTH ${password}\r\n${command}` : command);
const afterAuth = (password: string | undefined, reply: string) => (password && reply.startsWith("+OK\r\n") ? reply.slice(5) : reply);

/** INFO replication of the Redis on `port` ("" when it does not answer in time). */
async function replicationInfo(port: number, password?: string): Promise<string> {
  // A bulk reply: "$<length>\r\n<text>\r\n"; complete once the text has its length.
  const complete = (r: string) => {
    const m = /^\$(\d+)\r\n/.exec(afterAuth(password, r));
    return m !== null && Buffer.byteLength(afterAuth(password, r)) >= m[0].length + Number(m[1]) + 2;
  };
  const reply = await tcpExchange(port, authed(password, "INFO replication\r\n"), complete, 1000);
  return complete(reply) ? afterAuth(password, reply) : "";
}

type Sentinel = { port: number; proc: SpawnedProcess; logFile: string };

export async function startSentinelTopology(opts: SentinelTopologyOptions = {}): Promise<SentinelTopology> {
  const bin = requireBinary("redis-server", "redis-server");
  const name = opts.name ?? "switchboard";
  const dir = mkdtempSync(join(tmpdir(), "switchboard-sentinel-"));
  removeDirAtExit(dir);
  const started: { stop(): Promise<void> }[] = [];
  let stopped = false;

  const pong = (port: number, password?: string) =>
    tcpExchange(port, authed(password, "PING\r\n"), (r) => afterAuth(password, r).includes("\r\n"), 1000).then((r) => afterAuth(password, r).startsWith("+PONG"));
  const awaitPong = async (port: number, proc: SpawnedProcess, logFile: string, what: string, password?: string) =>
    waitUntil(() => pong(port, password), {
      timeoutMs: READY_TIMEOUT_MS,
      what: () => `${what} on port ${port}; log:\n${tailFile(logFile)}`,
      abortIf: () => (proc.isRunning() ? undefined : `exited with ${proc.child.exitCode ?? proc.child.signalCode}`),
    });

  async function dataNode(replicaOfPort?: number): Promise<DataNode> {
    const port = await freePort();
    const nodeDir = join(dir, `d${port}`);
    mkdirSync(nodeDir);
    const conf = join(nodeDir, "redis.conf");
    const logFile = join(nodeDir, "redis.log");
    writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        "protected-mode no",
        `dir ${nodeDir}`,
        'save ""',
        "appendonly yes",
        // A replica (re)joining gets its copy at once rather than after the default 5 s pause.
        "repl-diskless-sync-delay 0",
        ...(opts.password ? [`requirepass ${opts.password}`, `masterauth ${opts.password}`] : []),
        ...(replicaOfPort === undefined ? [] : [`replicaof 127.0.0.1 ${replicaOfPort}`]),
        "",
      ].join("\n"),
    );
    let proc: SpawnedProcess | undefined;
    const launch = async (of?: number) => {
      const p = spawnTracked(bin, [conf, ...(of === undefined ? [] : ["--replicaof", "127.0.0.1", String(of)])], { cwd: nodeDir, logFile });
      proc = p;
      await awaitPong(port, p, logFile, "redis-server", opts.password);
    };
    await launch();
    const signal = (sig: NodeJS.Signals) => {
      const pid = proc?.child.pid;
      if (pid !== undefined && proc?.isRunning()) process.kill(pid, sig);
    };
    const node: DataNode = {
      port,
      url: `redis://127.0.0.1:${port}`,
      logFile,
      running: () => proc?.isRunning() ?? false,
      kill: async () => proc?.kill(),
      freeze: () => signal("SIGSTOP"),
      thaw: () => signal("SIGCONT"),
      async restart(of) {
        if (proc?.isRunning()) throw new Error(`redis-server ${port} is still running`);
        await launch(of?.port);
      },
    };
    started.push({
      stop: async () => {
        signal("SIGCONT");
        await proc?.stop(3000);
      },
    });
    return node;
  }

  async function sentinelNode(primaryPort: number): Promise<Sentinel> {
    const port = await freePort();
    const sDir = join(dir, `s${port}`);
    mkdirSync(sDir);
    const conf = join(sDir, "sentinel.conf");
    const logFile = join(sDir, "sentinel.log");
    writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        "protected-mode no",
        `dir ${sDir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 5000`,
        ...(opts.password ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
        ...(opts.sentinelPassword ? [`requirepass ${opts.sentinelPassword}`, `sentinel sentinel-pass ${opts.sentinelPassword}`] : []),
        "",
      ].join("\n"),
    );
    const proc = spawnTracked(bin, [conf, "--sentinel"], { cwd: sDir, logFile });
    started.push({ stop: () => proc.stop(3000) });
    await awaitPong(port, proc, logFile, "redis-server --sentinel", opts.sentinelPassword);
    return { port, proc, logFile };
  }

  const clients: ReturnType<typeof createClient>[] = [];
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of clients) c.destroy();
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    forgetDir(dir);
  };

  try {
    const first = await dataNode();
    const second = await dataNode(first.port);
    const nodes: [DataNode, DataNode] = [first, second];
    const sentinels = await Promise.all([0, 1, 2].map(() => sentinelNode(first.port)));

    // RESP2: SENTINEL replies as flat arrays, whatever the client's default.
    const ask = async (s: Sentinel, args: string[]): Promise<unknown> => {
      let c = clients[sentinels.indexOf(s)];
      if (!c) {
        c = createClient({ RESP: 2, ...(opts.sentinelPassword ? { password: opts.sentinelPassword } : {}), socket: { host: "127.0.0.1", port: s.port, reconnectStrategy: 100, connectTimeout: 1000 } });
        c.on("error", () => undefined);
        clients[sentinels.indexOf(s)] = c;
      }
      if (!c.isOpen) await c.connect();
      return c.sendCommand(args);
    };
    const fields = (flat: unknown): Record<string, string> => {
      const a = flat as string[];
      const o: Record<string, string> = {};
      for (let i = 0; i + 1 < a.length; i += 2) o[a[i]!] = a[i + 1]!;
      return o;
    };
    /** The port every running Sentinel names as the primary, when they agree. */
    const agreedPrimary = async (): Promise<number | undefined> => {
      const ports = await Promise.all(
        sentinels.map(async (s) => {
          try {
            const addr = (await ask(s, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", name])) as [string, string] | null;
            return addr ? Number(addr[1]) : undefined;
          } catch {
            return undefined;
          }
        }),
      );
      return ports.every((p) => p !== undefined && p === ports[0]) ? ports[0] : undefined;
    };
    const nodeAt = (port: number): DataNode => {
      const n = nodes.find((d) => d.port === port);
      if (!n) throw new Error(`the Sentinels name an unknown primary on port ${port}`);
      return n;
    };
    const role = async (node: DataNode): Promise<string> => /role:(\w+)/.exec(await replicationInfo(node.port, opts.password))?.[1] ?? "";

    // Ready once every Sentinel sees the two others and the replica, and the replica streams from the primary.
    await waitUntil(
      async () => {
        for (const s of sentinels) {
          const m = fields(await ask(s, ["SENTINEL", "MASTER", name]).catch(() => []));
          if (m["num-other-sentinels"] !== "2" || m["num-slaves"] !== "1" || m.flags !== "master") return false;
        }
        return /slave0:.*state=online/.test(await replicationInfo(first.port, opts.password));
      },
      { timeoutMs: READY_TIMEOUT_MS, what: () => `the Sentinels to agree on the primary and its replica; logs:\n${sentinels.map((s) => tailFile(s.logFile, 5)).join("\n")}` },
    );

    const topology: SentinelTopology = {
      name,
      sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
      nodes,
      async primary() {
        return nodeAt(await until(agreedPrimary, { timeoutMs: READY_TIMEOUT_MS, what: "the Sentinels to agree on the primary" }));
      },
      async replica() {
        const p = await topology.primary();
        return nodes[0] === p ? nodes[1] : nodes[0];
      },
      async failover() {
        const from = await topology.primary();
        const started = Date.now();
        await from.kill();
        const to = nodeAt(
          await until(
            async () => {
              const p = await agreedPrimary();
              return p !== undefined && p !== from.port && (await role(nodeAt(p)).catch(() => "")) === "master" ? p : undefined;
            },
            { timeoutMs: 30_000, what: () => `a failover away from ${from.port}; logs:\n${sentinels.map((s) => tailFile(s.logFile, 5)).join("\n")}` },
          ),
        );
        return { from, to, ms: Date.now() - started };
      },
      stop,
    };
    return topology;
  } catch (err) {
    await stop();
    throw err;
  }
}
