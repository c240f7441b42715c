// Re-hosted media on local disk: MEDIA_DIR/<token>.data (the bytes) and <token>.json (content type,
// file name, size, expiry). On disk rather than in Redis: Redis keeps everything in memory and
// rewrites it into its AOF, and a month of pictures (up to MEDIA_MAX_BYTES each) would crowd out the
// queues it exists for. The files are written to a temporary name and renamed, the metadata last, so
// a crash never leaves a half file that looks complete: no metadata, no media.
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { MediaTooLargeError, type MediaFiles, type MediaRemover, type StoredMedia } from "../../core/flows/media.js";

/** base64url of 32 bytes, nothing else: the only names ever joined to MEDIA_DIR (no traversal). */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
/** A leftover of a crash (temporary or data file without metadata) is removed after this long. */
const ORPHAN_AGE_MS = 3600_000;

export function isMediaToken(s: string): boolean {
  return TOKEN.test(s);
}

export interface DiskMediaStore extends MediaFiles, MediaRemover {
  /** The bytes of unexpired media, opened (a sweep that runs meanwhile cannot cut the answer short). */
  open(token: string): Promise<{ meta: StoredMedia; stream: Readable } | undefined>;
  /** Deletes expired media and crash leftovers; returns how many media were deleted. */
  sweep(now?: number): Promise<number>;
}

function parseMeta(text: string): StoredMedia | undefined {
  try {
    const m = JSON.parse(text) as Partial<StoredMedia>;
    if (typeof m.contentType === "string" && typeof m.filename === "string" && typeof m.size === "number" && typeof m.expiresAt === "number") {
      return { contentType: m.contentType, filename: m.filename, size: m.size, expiresAt: m.expiresAt };
    }
  } catch {
    /* unreadable: treated as absent, and swept */
  }
  return undefined;
}

export function createDiskMediaStore(dir: string): DiskMediaStore {
  const dataPath = (token: string) => join(dir, `${token}.data`);
  const metaPath = (token: string) => join(dir, `${token}.json`);
  const tmpPath = (token: string) => join(dir, `.tmp-${token}-${randomBytes(6).toString("hex")}`);
  let ready: Promise<unknown> | undefined;
  const ensureDir = () => (ready ??= mkdir(dir, { recursive: true, mode: 0o700 }));

  async function get(token: string, now = Date.now()): Promise<StoredMedia | undefined> {
    if (!isMediaToken(token)) return undefined;
    let meta: StoredMedia | undefined;
    try {
      meta = parseMeta(await readFile(metaPath(token), "utf8"));
    } catch {
      return undefined;
    }
    if (!meta || meta.expiresAt <= now) return undefined;
    return meta;
  }

  return {
    get: (token) => get(token),

    async put(token, meta, body, maxBytes) {
      if (!isMediaToken(token)) throw new Error("invalid media token");
      await ensureDir();
      const tmp = tmpPath(token);
      const fh = await open(tmp, "wx", 0o600);
      let size = 0;
      try {
        for await (const chunk of body) {
          size += chunk.byteLength;
          // Leaving the loop ends the fetch too (its body stream is destroyed): nothing more is read.
          if (size > maxBytes) throw new MediaTooLargeError(`larger than ${maxBytes} bytes`);
          await fh.write(chunk);
        }
        await fh.sync(); // kept for MEDIA_RETENTION: it should survive a power cut like Redis's AOF
      } catch (err) {
        await fh.close().catch(() => undefined);
        await rm(tmp, { force: true });
        throw err;
      }
      await fh.close();
      await rename(tmp, dataPath(token));
      const stored: StoredMedia = { ...meta, size };
      const metaTmp = tmpPath(token);
      await writeFile(metaTmp, JSON.stringify({ v: 1, ...stored }), { mode: 0o600 });
      await rename(metaTmp, metaPath(token));
      return stored;
    },

    async open(token) {
      const meta = await get(token);
      if (!meta) return undefined;
      try {
        const fh = await open(dataPath(token), "r");
        return { meta, stream: fh.createReadStream() }; // closes the handle when done
      } catch {
        return undefined;
      }
    },

    async remove(token) {
      if (!isMediaToken(token)) return false;
      // Metadata first: from then on it is never served, even if the bytes outlive a crash (swept later).
      const had = await stat(metaPath(token)).then(
        () => true,
        () => false,
      );
      await rm(metaPath(token), { force: true });
      await rm(dataPath(token), { force: true });
      return had;
    },

    async sweep(now = Date.now()) {
      await ensureDir();
      const names = await readdir(dir);
      const metas = new Set(names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5)));
      let deleted = 0;
      for (const name of names) {
        const path = join(dir, name);
        try {
          if (name.endsWith(".json")) {
            const token = name.slice(0, -5);
            const meta = parseMeta(await readFile(path, "utf8"));
            if (meta && meta.expiresAt > now) continue;
            // Bytes first: metadata without bytes is never served, bytes without metadata are swept later.
            await rm(dataPath(token), { force: true });
            await rm(path, { force: true });
            deleted++;
          } else if (name.startsWith(".tmp-") || (name.endsWith(".data") && !metas.has(name.slice(0, -5)))) {
            if ((await stat(path)).mtimeMs < now - ORPHAN_AGE_MS) await rm(path, { force: true });
          }
        } catch {
          // Gone meanwhile (another instance sharing the directory swept it): nothing to do.
        }
      }
      return deleted;
    },
  };
}
