// The local journal: what it promises on disk (appended lines, fdatasync before an append resolves),
// reading back, a torn last line left by a crash, rotation and removal (truncation after a replay).
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import { createJournal, type Journal } from "../../src/adapters/journal/journal.js";

interface Rec {
  n: number;
  text: string;
}
const parse = (v: unknown): Rec | undefined => {
  const r = v as Partial<Rec> | null;
  return r && typeof r.n === "number" && typeof r.text === "string" ? { n: r.n, text: r.text } : undefined;
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "journal-test-"));
  dirs.push(d);
  return d;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function open_(dir: string, skipped: string[] = []): Promise<Journal<Rec>> {
  const j = createJournal<Rec>({ dir, parse, onSkipped: (file, line, reason) => skipped.push(`${file}:${line}: ${reason}`) });
  await j.init();
  return j;
}

/** Everything waiting, in replay order, read the way a replay does. */
async function readAll(j: Journal<Rec>): Promise<Rec[]> {
  const out: Rec[] = [];
  for (const f of await j.rotate()) out.push(...(await collect(j.read(f))));
  return out;
}

test("append resolves only after the line is written and fdatasync'ed", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  // Watch the FileHandle the journal uses: every append must write, then datasync, before resolving.
  const probe = await open(join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void>; write(...a: unknown[]): Promise<unknown> };
  await probe.close();
  const events: string[] = [];
  const origSync = proto.datasync;
  const origWrite = proto.write;
  proto.datasync = async function (this: unknown) {
    events.push("datasync");
    return origSync.call(this);
  };
  proto.write = async function (this: unknown, ...a: unknown[]) {
    events.push("write");
    return origWrite.apply(this, a);
  };
  try {
    await j.append({ n: 1, text: "hello" });
    events.push("resolved");
  } finally {
    proto.datasync = origSync;
    proto.write = origWrite;
  }
  assert.deepEqual(events, ["write", "datasync", "resolved"]);
  assert.equal(readFileSync(join(dir, "active.jsonl"), "utf8"), '{"n":1,"text":"hello"}\n');
});

test("records read back in order, and a re-opened journal knows what is pending", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  for (let n = 1; n <= 5; n++) await j.append({ n, text: `m${n} ünïcode "quoted"\nnewline` });
  assert.equal(j.pending(), 5);
  const again = await open_(dir); // as after a crash
  assert.equal(again.pending(), 5);
  assert.deepEqual(
    (await readAll(again)).map((r) => r.n),
    [1, 2, 3, 4, 5],
  );
  assert.equal((await readAll(again))[0]!.text, 'm1 ünïcode "quoted"\nnewline');
});

test("a torn last line is skipped, and the next append does not glue onto it", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  await j.append({ n: 1, text: "whole" });
  appendFileSync(join(dir, "active.jsonl"), '{"n":2,"text":"to'); // the crash hit mid-write
  const skipped: string[] = [];
  const reopened = await open_(dir, skipped);
  assert.equal(reopened.pending(), 1);
  await reopened.append({ n: 3, text: "after the crash" });
  assert.equal(reopened.pending(), 2);
  assert.deepEqual(
    (await readAll(reopened)).map((r) => r.n),
    [1, 3],
  );
  assert.ok(
    skipped.some((s) => /not JSON/.test(s)),
    skipped.join("; "),
  ); // the ended fragment
});

test("a torn line at the very end is reported as torn; corrupt and foreign lines are skipped", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "active.jsonl"), '{"n":1,"text":"a"}\nnot json\n{"other":true}\n\n{"n":4,"text":"d"}\n{"n":5,"te');
  const skipped: string[] = [];
  const j = await open_(dir, skipped);
  assert.equal(j.pending(), 2);
  assert.deepEqual(
    (await readAll(j)).map((r) => r.n),
    [1, 4],
  );
  assert.ok(skipped.some((s) => /torn/.test(s)));
  assert.ok(skipped.some((s) => /not a journal record/.test(s)));
});

test("rotate moves the active file aside; remove truncates what was replayed, not what came after", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  await j.append({ n: 1, text: "a" });
  await j.append({ n: 2, text: "b" });
  const files = await j.rotate();
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^replay-\d{13}-\d{6}\.jsonl$/);
  await j.append({ n: 3, text: "c" }); // arrives during the replay
  assert.deepEqual(
    (await collect(j.read(files[0]!))).map((r) => r.n),
    [1, 2],
  );
  await j.remove(files[0]!);
  assert.equal(j.pending(), 1);
  assert.deepEqual(readdirSync(dir).sort(), ["active.jsonl"]);
  const next = await j.rotate();
  assert.deepEqual(
    (await collect(j.read(next[0]!))).map((r) => r.n),
    [3],
  );
  await j.remove(next[0]!);
  assert.equal(j.pending(), 0);
  assert.deepEqual(readdirSync(dir), []);
  assert.deepEqual(await j.rotate(), [], "nothing to replay");
});

test("a replay file left by a crash mid-replay is replayed again after a restart", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  await j.append({ n: 1, text: "a" });
  const [file] = await j.rotate();
  const restarted = await open_(dir);
  assert.equal(restarted.pending(), 1);
  assert.deepEqual(await restarted.rotate(), [file]);
});

test("set-aside records are kept with their reason and do not count as pending", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  await j.setAside({ n: 9, text: "bad" }, "refused");
  assert.equal(j.pending(), 0);
  const kept = JSON.parse(readFileSync(join(dir, "set-aside.jsonl"), "utf8").trim()) as { reason: string; record: Rec };
  assert.deepEqual(kept.record, { n: 9, text: "bad" });
  assert.equal(kept.reason, "refused");
});

test("status: writable with free space; not writable (with an errno code) while appends fail; recovers", async () => {
  const dir = tempDir();
  const j = await open_(dir);
  assert.deepEqual(await j.status(), { writable: true, pending: 0 });
  // The directory is gone and a file sits in its place (works even as root, unlike a chmod).
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(dir, "");
  await assert.rejects(j.append({ n: 1, text: "x" }), /EEXIST|ENOTDIR/);
  const st = await j.status();
  assert.equal(st.writable, false);
  assert.match(st.error ?? "", /^(EEXIST|ENOTDIR)$/);
  rmSync(dir);
  assert.equal((await j.status()).writable, true, "a probe write proves it usable again");
  await j.append({ n: 2, text: "y" });
  assert.equal(j.pending(), 1);
});

test("a directory that cannot be created is reported, not thrown", async () => {
  const base = tempDir();
  writeFileSync(join(base, "file"), "");
  const j = createJournal<Rec>({ dir: join(base, "file", "journal"), parse });
  await j.init();
  const st = await j.status();
  assert.equal(st.writable, false);
  assert.equal(st.error, "ENOTDIR");
});
