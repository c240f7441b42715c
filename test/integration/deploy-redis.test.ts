// The Redis part of deploy/docker-compose.yml, started for real: the primary, the replica and the three
// Sentinels run from copies of the seed configs in deploy/compose/redis/ with Debian's redis-server,
// as the compose commands run them (`redis-server FILE`, `redis-server FILE --sentinel`). Only what
// Docker provides is changed in the copies: the service names become 127.0.0.1, the ports free
// loopback ports, /data a temporary directory. Then a failover, to show the files are what a failover
// needs (Sentinel rewrites them).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { composeRedisNodes, parseRedisConf, redisValue, type ComposeRedisNode } from "../support/deploy-kit.js";
import { freePort } from "../support/ports.js";
import { forgetDir, removeDirAtExit, requireBinary, spawnTracked, tailFile, tcpExchange, type SpawnedProcess } from "../support/processes.js";
import { waitUntil } from "../support/wait.js";

interface Running {
  node: ComposeRedisNode;
  port: number;
  file: string;
  log: string;
  proc: SpawnedProcess;
}

const dir = mkdtempSync(join(tmpdir(), "sb-deploy-redis-"));
removeDirAtExit(dir);
const running: Running[] = [];

after(async () => {
  await Promise.all(running.map((r) => r.proc.stop(3000)));
  rmSync(dir, { recursive: true, force: true });
  forgetDir(dir);
});

/** One inline command; the raw RESP reply. */
const ask = (port: number, command: string): Promise<string> => tcpExchange(port, `${command}\r\n`, (r) => r.endsWith("\r\n"), 1000);

/**
 * The seed as the container would run it, with Docker's part done here: every word naming a compose
 * Redis service becomes 127.0.0.1, and the port after it (the service's own) that service's port here.
 */
function localCopy(node: ComposeRedisNode, ports: Map<string, number>, confPort: Map<string, string>, dataDir: string): string {
  const lines = readFileSync(node.seed, "utf8").split("\n");
  for (const d of node.conf) {
    const words = [...d.words];
    if (words[0] === "port") words[1] = String(ports.get(node.service));
    if (words[0] === "dir") words[1] = dataDir;
    for (let i = 0; i < words.length; i++) {
      const service = words[i]!;
      if (!ports.has(service)) continue;
      words[i] = "127.0.0.1";
      if (words[i + 1] === confPort.get(service)) words[i + 1] = String(ports.get(service));
    }
    lines[d.line - 1] = words.join(" ");
  }
  return lines.join("\n");
}

test("the compose example's Redis (primary, replica, three Sentinels) starts from its config files and fails over", async (t) => {
  const bin = requireBinary("redis-server", "redis-server");
  const started = Date.now();
  const nodes = composeRedisNodes();
  const ports = new Map<string, number>();
  const confPort = new Map<string, string>();
  for (const n of nodes) {
    ports.set(n.service, await freePort());
    confPort.set(n.service, redisValue(n.conf, "port")?.[0] ?? (n.sentinel ? "26379" : "6379"));
  }
  const start = async (n: ComposeRedisNode): Promise<Running> => {
    const dataDir = join(dir, n.service);
    mkdirSync(dataDir);
    const file = join(dataDir, n.runPath.slice(n.runPath.lastIndexOf("/") + 1));
    writeFileSync(file, localCopy(n, ports, confPort, dataDir));
    const log = join(dir, `${n.service}.log`);
    const proc = spawnTracked(bin, [file, ...(n.sentinel ? ["--sentinel"] : [])], { cwd: dataDir, logFile: log });
    const r: Running = { node: n, port: ports.get(n.service)!, file, log, proc };
    running.push(r);
    await waitUntil(async () => (await ask(r.port, "PING")).startsWith("+PONG"), {
      timeoutMs: 10_000,
      what: () => `${n.service} answers PING (log: ${tailFile(log)})`,
      abortIf: () => (proc.isRunning() ? undefined : `exited: ${tailFile(log)}`),
    });
    return r;
  };

  // the order of the compose file's depends_on: the data nodes, then the Sentinels (which need not wait
  // for the replica's first sync: the primary delays it by repl-diskless-sync-delay, 5 s by default)
  const data = await Promise.all(nodes.filter((n) => !n.sentinel).map(start));
  const replica = data.find((r) => redisValue(r.node.conf, "replicaof"))!;
  const primary = data.find((r) => r !== replica)!;
  const sentinels = await Promise.all(nodes.filter((n) => n.sentinel).map(start));
  await waitUntil(async () => (await ask(replica.port, "INFO replication")).includes("master_link_status:up"), { timeoutMs: 15_000, what: "the replica follows the primary" });
  const name = redisValue(sentinels[0]!.node.conf, "sentinel", "monitor")![0]!;

  // the three find each other and the replica, and can reach a quorum and authorise a failover
  let quorum = "";
  await waitUntil(
    async () => {
      quorum = await ask(sentinels[0]!.port, `SENTINEL CKQUORUM ${name}`);
      return quorum.startsWith("+OK 3 usable Sentinels");
    },
    { timeoutMs: 15_000, what: () => `SENTINEL CKQUORUM ${name} says 3 usable Sentinels (got ${JSON.stringify(quorum)})` },
  );
  for (const s of sentinels) assert.ok((await ask(s.port, `SENTINEL REPLICAS ${name}`)).includes(`\r\n${replica.port}\r\n`), `${s.node.service} knows the replica`);
  const formed = Date.now() - started;

  // a failover: every Sentinel then names the replica, which is now a primary
  assert.equal(await ask(sentinels[0]!.port, `SENTINEL FAILOVER ${name}`), "+OK\r\n");
  for (const s of sentinels) {
    await waitUntil(async () => (await ask(s.port, `SENTINEL GET-MASTER-ADDR-BY-NAME ${name}`)).includes(`\r\n${replica.port}\r\n`), {
      timeoutMs: 15_000,
      what: `${s.node.service} names the replica as the primary`,
    });
  }
  assert.match(await ask(replica.port, "ROLE"), /^\*\d+\r\n\$6\r\nmaster\r\n/, "the replica is a primary");
  const failedOver = Date.now() - started - formed;

  // Sentinel wrote the files: hence a writable copy on each node's own volume, never the seed
  await waitUntil(() => !redisValue(parseRedisConf(readFileSync(replica.file, "utf8")), "replicaof"), { timeoutMs: 5000, what: "the promoted replica's file loses its replicaof line" });
  for (const s of sentinels) assert.ok(redisValue(parseRedisConf(readFileSync(s.file, "utf8")), "sentinel", "myid"), `${s.node.service} wrote its id into its file`);
  assert.ok(primary.proc.isRunning());
  t.diagnostic(`topology formed in ${formed} ms (3 Sentinels, quorum reachable); forced failover done in ${failedOver} ms`);
});
