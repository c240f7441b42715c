// A local append-only journal: one JSON record per line, each append on disk (fdatasync) before it
// resolves. It keeps what Redis could not take, until a replay has put it there.
//
// Files in the directory (one gateway process per directory):
//   active.jsonl            appends go here
//   replay-<ms>-<n>.jsonl   the active file moved aside for a replay; deleted once replayed
//   set-aside.jsonl         records a replay refused as invalid, with the reason, for an operator
// A crash can leave a torn last line (the append never resolved, so nobody was told it was stored):
// reading skips it, and the next append starts on a fresh line so it cannot glue onto the fragment.
import { createReadStream, constants as FS } from "node:fs";
import { access, mkdir, open, readdir, rename, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";

const ACTIVE = "active.jsonl";
const SET_ASIDE = "set-aside.jsonl";
const PROBE = ".probe";
const REPLAY = /^replay-\d{13}-\d{6}\.jsonl$/;
const MIN_FREE_BYTES = 1024 * 1024;
// The journal holds message bodies: readable by the gateway's user only.
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

// An errno code (EACCES, ENOSPC, EROFS…) says what is wrong without the paths a message carries.
const reason = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

export interface JournalStatus {
  writable: boolean;
  /** Records waiting for a replay. */
  pending: number;
  error?: string;
}

export interface Journal<T> {
  /** Creates the directory and counts what a previous run left. Never throws: status() reports it. */
  init(): Promise<void>;
  /** Resolves once the record is on disk (written and fdatasync'ed). */
  append(record: T): Promise<void>;
  pending(): number;
  /**
   * Lists the files to replay, oldest first. Only when none is waiting is the active file moved aside
   * (appends go on in a fresh one), so a replay that keeps failing does not leave a file per attempt.
   */
  rotate(): Promise<string[]>;
  /** The readable records of a replay file, in order; torn or corrupt lines are skipped and reported. */
  read(file: string): AsyncIterable<T>;
  /** Deletes a replay file: call only once every record in it is stored elsewhere. */
  remove(file: string): Promise<void>;
  /** Keeps a record that can never be replayed, with the reason. */
  setAside(record: T, reason: string): Promise<void>;
  status(): Promise<JournalStatus>;
}

export interface JournalOptions<T> {
  dir: string;
  /** Validates one parsed line; undefined = not a record of ours (skipped). */
  parse(value: unknown): T | undefined;
  /** Told about lines it skipped (torn last line, corruption). */
  onSkipped?(file: string, line: number, reason: string): void;
}

export function createJournal<T>(opts: JournalOptions<T>): Journal<T> {
  const { dir } = opts;
  const counts = new Map<string, number>(); // file → records in it
  let lastError: string | undefined;
  let seq = 0;
  // Every file operation runs alone: a rotation never moves a file under a half-done append.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <R>(fn: () => Promise<R>): Promise<R> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  async function syncDir(): Promise<void> {
    // A new, renamed or deleted file is durable only once its directory entry is.
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async function* lines(file: string): AsyncGenerator<{ n: number; text: string; complete: boolean }> {
    let rest = "";
    let n = 0;
    for await (const chunk of createReadStream(join(dir, file), { encoding: "utf8" })) {
      const parts = (rest + (chunk as string)).split("\n");
      rest = parts.pop() ?? "";
      for (const text of parts) yield { n: ++n, text, complete: true };
    }
    if (rest.length > 0) yield { n: ++n, text: rest, complete: false };
  }

  async function* records(file: string): AsyncGenerator<T> {
    for await (const { n, text, complete } of lines(file)) {
      if (text.trim() === "") continue;
      if (!complete) {
        opts.onSkipped?.(file, n, "torn last line (the append never completed)");
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        opts.onSkipped?.(file, n, "not JSON");
        continue;
      }
      const record = opts.parse(value);
      if (record === undefined) opts.onSkipped?.(file, n, "not a journal record");
      else yield record;
    }
  }

  async function countRecords(file: string): Promise<number> {
    let n = 0;
    for await (const _ of records(file)) n++;
    return n;
  }

  async function probe(): Promise<void> {
    try {
      await mkdir(dir, { recursive: true, mode: DIR_MODE });
      const fh = await open(join(dir, PROBE), "w");
      try {
        await fh.write("ok\n");
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await unlink(join(dir, PROBE));
      lastError = undefined;
    } catch (err) {
      lastError = reason(err);
      throw err;
    }
  }

  const total = (): number => [...counts.values()].reduce((a, b) => a + b, 0);

  return {
    init: () =>
      serial(async () => {
        try {
          await mkdir(dir, { recursive: true, mode: DIR_MODE });
          for (const f of await readdir(dir)) {
            if (f === ACTIVE || REPLAY.test(f)) counts.set(f, await countRecords(f));
          }
          lastError = undefined;
        } catch (err) {
          lastError = reason(err);
        }
      }),

    append: (record) =>
      serial(async () => {
        const line = JSON.stringify(record) + "\n";
        try {
          await mkdir(dir, { recursive: true, mode: DIR_MODE });
          const fh = await open(join(dir, ACTIVE), "a+", FILE_MODE);
          let created = false;
          try {
            const { size } = await fh.stat();
            created = size === 0;
            let prefix = "";
            if (size > 0) {
              const last = Buffer.alloc(1);
              await fh.read(last, 0, 1, size - 1);
              if (last[0] !== 0x0a) prefix = "\n"; // end the torn line a crash left
            }
            await fh.write(prefix + line);
            await fh.datasync();
          } finally {
            await fh.close();
          }
          if (created) await syncDir();
          counts.set(ACTIVE, (counts.get(ACTIVE) ?? 0) + 1);
          lastError = undefined;
        } catch (err) {
          lastError = reason(err);
          throw err;
        }
      }),

    pending: total,

    rotate: () =>
      serial(async () => {
        const waiting = [...counts.keys()].filter((f) => REPLAY.test(f));
        if (waiting.length === 0 && (counts.get(ACTIVE) ?? 0) > 0) {
          const name = `replay-${String(Date.now()).padStart(13, "0")}-${String(seq++ % 1e6).padStart(6, "0")}.jsonl`;
          await rename(join(dir, ACTIVE), join(dir, name));
          await syncDir();
          counts.set(name, counts.get(ACTIVE) ?? 0);
          counts.delete(ACTIVE);
        }
        return [...counts.keys()].filter((f) => REPLAY.test(f)).sort();
      }),

    read: (file) => records(file),

    remove: (file) =>
      serial(async () => {
        await unlink(join(dir, file)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "ENOENT") throw err;
        });
        await syncDir();
        counts.delete(file);
      }),

    setAside: (record, reason) =>
      serial(async () => {
        const fh = await open(join(dir, SET_ASIDE), "a", FILE_MODE);
        try {
          await fh.write(JSON.stringify({ at: new Date().toISOString(), reason, record }) + "\n");
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }),

    async status() {
      const pending = total();
      try {
        // After a failed write, only a write that succeeds proves the disk is usable again.
        if (lastError) await serial(probe);
        await access(dir, FS.W_OK);
        const fs = await statfs(dir);
        if (fs.bavail * fs.bsize < MIN_FREE_BYTES) return { writable: false, pending, error: "no free space" };
        return { writable: true, pending };
      } catch (err) {
        return { writable: false, pending, error: reason(err) };
      }
    },
  };
}
