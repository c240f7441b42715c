// The cluster member (src/core/cluster/cluster-member.ts) on the in-memory lease store: several
// "instances" in one process share the link and the partitions, hand them over, and stop work the moment
// a lease cannot be renewed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryLeases, type MemoryLeases } from "../../src/adapters/memory/leases.js";
import { createClusterMember, type ClusterMember, type LeasedWork } from "../../src/core/cluster/cluster-member.js";
import { ownerOf, partitionsOf } from "../../src/core/cluster/work-share.js";
import { waitUntil } from "../support/wait.js";

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const PARTITIONS = 8;

interface Instance {
  member: ClusterMember;
  /** What runs here now: "link" and partition numbers. */
  working: Set<string>;
  events: string[];
  fatal: string[];
}

function work(inst: Omit<Instance, "member">, name: string, releaseMs = 0): LeasedWork {
  return {
    acquired: (token) => {
      inst.working.add(name);
      inst.events.push(`acquired ${name} ${token}`);
    },
    lost: (reason) => {
      inst.working.delete(name);
      inst.events.push(`lost ${name}: ${reason}`);
    },
    release: async () => {
      await new Promise((r) => setTimeout(r, releaseMs));
      inst.working.delete(name);
      inst.events.push(`released ${name}`);
    },
  };
}

function instance(store: MemoryLeases, name: string, opts: { ttlMs?: number; releaseMs?: number; nonce?: string } = {}): Instance {
  const inst = { working: new Set<string>(), events: [] as string[], fatal: [] as string[] };
  const member = createClusterMember({
    store,
    instance: name,
    nonce: opts.nonce ?? `${name}-nonce`,
    ttlMs: opts.ttlMs ?? 400,
    link: work(inst, "link", opts.releaseMs),
    partitions: { count: PARTITIONS, work: (p) => work(inst, String(p), opts.releaseMs) },
    log: quiet,
    onFatal: (m) => inst.fatal.push(m),
  });
  return { ...inst, member };
}

/** Every partition and the link worked by exactly one of `instances`. */
function exactlyOnce(instances: Instance[]): boolean {
  for (const name of ["link", ...Array.from({ length: PARTITIONS }, (_, p) => String(p))]) {
    if (instances.filter((i) => i.working.has(name)).length !== 1) return false;
  }
  return true;
}

test("the work share: every instance computes the same owner, and only the partitions of a leaving instance move", () => {
  const three = ["a", "b", "c"];
  const owners = Array.from({ length: 64 }, (_, p) => ownerOf(p, three));
  assert.deepEqual(
    owners,
    Array.from({ length: 64 }, (_, p) => ownerOf(p, [...three].reverse())),
  );
  assert.ok(
    three.every((i) => partitionsOf(i, 64, three).length > 10),
    "roughly even",
  );
  const two = ["a", "b"];
  for (let p = 0; p < 64; p++) if (owners[p] !== "c") assert.equal(ownerOf(p, two), owners[p], `partition ${p} stays`);
  assert.equal(ownerOf(0, []), undefined);
});

test("three instances: one holds the link, the partitions are shared out, and a clean stop hands everything over", async () => {
  const store = createMemoryLeases();
  const all = ["a", "b", "c"].map((n) => instance(store, n));
  for (const i of all) i.member.start();
  await waitUntil(() => exactlyOnce(all) && all.every((i) => [...i.working].some((w) => w !== "link")), { timeoutMs: 5000, what: "link and partitions shared out" });
  const linkHolder = all.find((i) => i.working.has("link"))!;
  await linkHolder.member.stop();
  assert.equal(linkHolder.working.size, 0, "the stopped instance works nothing");
  const rest = all.filter((i) => i !== linkHolder);
  await waitUntil(() => exactlyOnce(rest), { timeoutMs: 5000, what: "everything taken over by the other two" });
  assert.ok(
    linkHolder.events.every((e) => !e.startsWith("lost")),
    linkHolder.events.join("\n"),
  );
  await Promise.all(rest.map((i) => i.member.stop()));
});

test("a store that stops answering: the work stops before the lease can expire, and another instance takes it only after", async () => {
  const store = createMemoryLeases();
  const a = instance(store, "a", { ttlMs: 400 });
  a.member.start();
  await waitUntil(() => a.working.has("link") && a.working.size === PARTITIONS + 1, { timeoutMs: 3000, what: "a works everything" });
  let release!: () => void;
  store.hang = new Promise<void>((r) => (release = r));
  const hungAt = Date.now();
  await waitUntil(() => a.working.size === 0, { timeoutMs: 2000, what: "a stops everything" });
  const stoppedAfter = Date.now() - hungAt;
  assert.ok(stoppedAfter < 400, `stopped after ${stoppedAfter} ms, before the 400 ms lease could expire`);
  assert.ok(a.events.some((e) => /^lost link: not renewed within/.test(e)));
  release();
  store.hang = undefined;
  await waitUntil(() => a.working.has("link"), { timeoutMs: 3000, what: "taken again once the store answers" });
  assert.ok(a.member.status().leasesLost >= PARTITIONS + 1);
  await a.member.stop();
});

test("a crashed holder (never renews, never releases): another instance takes the link once its lease expired, with a larger token", async () => {
  const store = createMemoryLeases();
  // a's own view of the store, cut off by the "crash": a can no longer renew or release anything.
  let severed = false;
  const aView: MemoryLeases = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => (severed ? Promise.reject(new Error("crashed")) : (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  const a = instance(aView, "a", { ttlMs: 400 });
  a.member.start();
  await waitUntil(() => a.working.has("link"), { timeoutMs: 3000, what: "a holds the link" });
  const tokenA = a.member.status().link.token!;
  const b = instance(store, "b", { ttlMs: 400 });
  b.member.start();
  await waitUntil(() => exactlyOnce([a, b]) && b.working.size > 0, { timeoutMs: 3000, what: "a and b share the work" });
  assert.equal(b.working.has("link"), false, "b is a standby");
  const crashedAt = Date.now();
  severed = true;
  await waitUntil(() => b.working.has("link"), { timeoutMs: 3000, what: "b takes the link" });
  const takeover = Date.now() - crashedAt;
  assert.equal(a.working.size, 0, "a stopped its work by itself before b could take any");
  assert.ok(b.member.status().link.token! > tokenA, "a larger fencing token");
  assert.ok(takeover >= 300 && takeover < 1500, `taken over after ${takeover} ms (lease 400 ms)`);
  await waitUntil(() => b.working.size === PARTITIONS + 1, { timeoutMs: 3000, what: "b alone works everything" });
  await b.member.stop();
  severed = false;
  await a.member.stop();
});

test("two processes under one INSTANCE_ID: the second waits, then gives up with an error naming INSTANCE_ID", async () => {
  const store = createMemoryLeases();
  const first = instance(store, "same", { ttlMs: 200, nonce: "one" });
  first.member.start();
  await waitUntil(() => first.working.has("link"), { timeoutMs: 2000, what: "first holds the link" });
  const second = instance(store, "same", { ttlMs: 200, nonce: "two" });
  second.member.start();
  await waitUntil(() => second.fatal.length > 0, { timeoutMs: 3000, what: "the second gives up" });
  assert.match(second.fatal[0]!, /INSTANCE_ID=same/);
  assert.equal(second.working.size, 0, "it never worked anything");
  assert.equal(second.member.status().nameTaken, true);
  await Promise.all([first.member.stop(), second.member.stop()]);
});

test("a restarted process under its old name (the last one crashed): it waits for the old name to expire, then works", async () => {
  const store = createMemoryLeases();
  const old = instance(store, "gw", { ttlMs: 300, nonce: "before" });
  old.member.start();
  await waitUntil(() => old.working.has("link"), { timeoutMs: 2000, what: "holds the link" });
  store.down = true; // the crash: it stops renewing
  await waitUntil(() => old.working.size === 0, { timeoutMs: 2000, what: "old stopped" });
  await old.member.stop();
  store.down = false;
  const again = instance(store, "gw", { ttlMs: 300, nonce: "after" });
  again.member.start();
  await waitUntil(() => again.working.has("link"), { timeoutMs: 3000, what: "the restarted one holds the link" });
  assert.deepEqual(again.fatal, []);
  await again.member.stop();
});

test("a store that is away is said once (then every half minute), and its return once, not at every tick", async () => {
  const store = createMemoryLeases();
  const lines: string[] = [];
  const log = { info: (_o: object, m: string) => void lines.push(`info ${m}`), warn: (_o: object, m: string) => void lines.push(`warn ${m}`), error: () => undefined };
  const member = createClusterMember({
    store,
    instance: "a",
    nonce: "n",
    ttlMs: 400,
    partitions: { count: 1, work: () => ({ acquired: () => undefined, lost: () => undefined, release: async () => undefined }) },
    log,
    onFatal: () => undefined,
  });
  store.down = true;
  member.start();
  await new Promise((r) => setTimeout(r, 1200)); // about a dozen ticks
  store.down = false;
  await waitUntil(() => lines.includes("info the lease store answers again"), { timeoutMs: 2000, what: "the return said" });
  assert.equal(lines.filter((l) => l === "warn the lease store does not answer; retrying every tick").length, 1, lines.join("\n"));
  await member.stop();
});
