// Inbound MMS media, re-hosted (docs/developers/design.md "Outside → XMPP"; issue 5 item 2). Twilio's media links may
// need the account's credentials and expire behind redirects, and a client that opens them leaks its
// user's address to whoever hosts them; so before a chat item is rendered, the gateway fetches each
// item once and serves it from its own HTTP surface under an unguessable URL.
//
// Why in the delivery engine and not in the webhook: fetching can take seconds and Twilio waits at most 15 s
// for the webhook's answer, which must follow the durable write at once. The toXmpp handler calls
// prepare() just before rendering; a crash in between redelivers the item and prepare() runs again,
// reusing the token first reserved for (message, index), so the URL the user sees never changes.
import type { InboundMedia, XmppDelivery } from "../model/message.js";
import { RetryLater, type DeliveryMeta, type XmppOut } from "../ports.js";

/** A media item as the provider announced it (MediaUrlN, MediaContentTypeN), with the account that signed it. */
export type MediaSource = InboundMedia;

/** One allowed content type: the file extension and what a person calls it. */
interface MediaKind {
  ext: string;
  /** "a picture", "a video"…: for notes the user reads. */
  noun: string;
  /** Base of the served file name. */
  stem: string;
}

const IMAGE = (ext: string): MediaKind => ({ ext, noun: "a picture", stem: "picture" });
const AUDIO = (ext: string): MediaKind => ({ ext, noun: "an audio clip", stem: "audio" });
const VIDEO = (ext: string): MediaKind => ({ ext, noun: "a video", stem: "video" });

// Allowlist: what phones send by MMS. Everything else is refused, and so are types a browser would run
// on our origin (text/html, image/svg+xml): the files are served from the gateway's own host. Not
// text/csv: phones do not send it, and it is what the provider's API answers with a message log.
const ALLOWED: ReadonlyMap<string, MediaKind> = new Map([
  ["image/jpeg", IMAGE("jpg")],
  ["image/jpg", IMAGE("jpg")],
  ["image/pjpeg", IMAGE("jpg")],
  ["image/png", IMAGE("png")],
  ["image/gif", IMAGE("gif")],
  ["image/webp", IMAGE("webp")],
  ["image/bmp", IMAGE("bmp")],
  ["image/heic", IMAGE("heic")],
  ["image/heif", IMAGE("heif")],
  ["image/tiff", IMAGE("tiff")],
  ["audio/mpeg", AUDIO("mp3")],
  ["audio/mp3", AUDIO("mp3")],
  ["audio/mp4", AUDIO("m4a")],
  ["audio/aac", AUDIO("aac")],
  ["audio/amr", AUDIO("amr")],
  ["audio/ogg", AUDIO("ogg")],
  ["audio/opus", AUDIO("opus")],
  ["audio/wav", AUDIO("wav")],
  ["audio/x-wav", AUDIO("wav")],
  ["audio/vnd.wave", AUDIO("wav")],
  ["audio/webm", AUDIO("weba")],
  ["audio/3gpp", AUDIO("3gp")],
  ["audio/3gpp2", AUDIO("3g2")],
  ["audio/basic", AUDIO("au")],
  ["video/mp4", VIDEO("mp4")],
  ["video/mpeg", VIDEO("mpeg")],
  ["video/quicktime", VIDEO("mov")],
  ["video/webm", VIDEO("webm")],
  ["video/3gpp", VIDEO("3gp")],
  ["video/3gpp2", VIDEO("3g2")],
  ["text/plain", { ext: "txt", noun: "a text file", stem: "text" }],
  ["text/calendar", { ext: "ics", noun: "a calendar entry", stem: "event" }],
  ["text/vcard", { ext: "vcf", noun: "a contact card", stem: "contact" }],
  ["text/x-vcard", { ext: "vcf", noun: "a contact card", stem: "contact" }],
  ["text/directory", { ext: "vcf", noun: "a contact card", stem: "contact" }],
  ["application/vcard", { ext: "vcf", noun: "a contact card", stem: "contact" }],
  ["application/pdf", { ext: "pdf", noun: "a PDF document", stem: "document" }],
]);

export interface MediaType {
  /** What the gateway serves it as: the base type, plus the charset for text. */
  contentType: string;
  kind: MediaKind;
}

/** The allowed type a Content-Type header names, or undefined (absent, malformed, not allowed). */
export function mediaTypeOf(header: string | undefined): MediaType | undefined {
  if (!header) return undefined;
  const [base = "", ...params] = header.split(";").map((s) => s.trim());
  const type = base.toLowerCase();
  const kind = ALLOWED.get(type);
  if (!kind) return undefined;
  // A text file without its charset is read as windows-1252 by browsers: keep a well-formed one.
  const charset = type.startsWith("text/") ? params.map((p) => /^charset="?([A-Za-z0-9._-]{1,40})"?$/i.exec(p)?.[1]).find(Boolean) : undefined;
  return { contentType: charset ? `${type}; charset=${charset.toLowerCase()}` : type, kind };
}

/** What a person calls a media item of this (possibly unknown) type. */
function nounOf(contentType: string | undefined): string {
  const type = mediaTypeOf(contentType);
  if (type) return type.kind.noun;
  const top = (contentType ?? "").split("/")[0]?.toLowerCase();
  return top === "image" ? "a picture" : top === "video" ? "a video" : top === "audio" ? "an audio clip" : "a file";
}

/** Stored media, as kept beside its bytes. */
export interface StoredMedia {
  contentType: string;
  /** Safe file name served in the URL and in Content-Disposition, e.g. picture.jpg. */
  filename: string;
  size: number;
  /** ms since epoch; gone after this. */
  expiresAt: number;
}

/** The bytes of a fetched media item, not yet read. */
export interface FetchedMedia {
  /** The answer's Content-Type, when it had one. */
  contentType?: string;
  /** The answer's Content-Length, when it had one. */
  length?: number;
  body: AsyncIterable<Uint8Array>;
  /** Drops the unread body (and its connection). */
  discard(): void;
}

/** A fetch that did not give the bytes. `permanent`: trying again cannot help (401, 403, 410…). */
export class MediaFetchError extends Error {
  override name = "MediaFetchError";
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** Thrown by MediaFiles.put when the body turns out larger than allowed (nothing is kept). */
export class MediaTooLargeError extends Error {
  override name = "MediaTooLargeError";
}

/** How a media URL may be fetched, as the provider's adapter decides (only the first request; never a redirect). */
export type MediaAccess =
  /** On the provider's own API origin, the operator's setting (trusted): with these credentials, or without. */
  | { provider: true; credentials?: { username: string; password: string } }
  /** On the provider's origin, but not a media resource of the account that signed: not fetched. */
  | { refused: string }
  /** Anywhere else: fetched without credentials, through the private-address guard. */
  | { provider: false };

/** The provider-specific part of fetching media: whose credentials go where (adapters/twilio/media-access.ts). */
export interface MediaAccessPolicy {
  /** For the first request of a fetch; `account`: the signer of the webhook that announced the media. */
  access(url: URL, account: string | undefined): Promise<MediaAccess>;
  /** True for the provider's own origin (a redirect back to it is trusted, never given credentials). */
  isProviderOrigin(url: URL): boolean;
}

export interface MediaFetchOptions {
  /** The provider account that signed the webhook announcing the media: only its own media get its credentials. */
  account?: string;
  signal?: AbortSignal;
}

/** Fetches provider media: credentials where they belong, redirects followed, time-bounded. */
export interface MediaFetcher {
  /** Throws MediaFetchError. */
  fetch(url: string, opts?: MediaFetchOptions): Promise<FetchedMedia>;
}

/** Where re-hosted media live (files on disk: see adapters/media/disk-store.ts). */
export interface MediaFiles {
  /** Complete, unexpired media under `token`, or undefined. */
  get(token: string): Promise<StoredMedia | undefined>;
  /** Stores `body` under `token` (replacing any incomplete copy); throws MediaTooLargeError beyond `maxBytes`. */
  put(token: string, meta: Omit<StoredMedia, "size">, body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<StoredMedia>;
}

/** The idempotency map: (message id, media index) → token. */
export interface MediaTokens {
  /**
   * The token reserved for `key`: the first caller's (SET NX), kept `ttlS` seconds. `owner`: the bare
   * JID the media is delivered to; the token is listed under it, so it can be deleted with the user.
   */
  reserve(key: string, ttlS: number, owner?: string): Promise<string>;
}

/** The media tokens listed per user (see MediaTokens.reserve's owner). */
export interface MediaIndex {
  /** The tokens of the media delivered to `jid`; the list is forgotten. */
  takeOwned(jid: string): Promise<string[]>;
}

/** Deletes re-hosted media before their time (the user they were delivered to is forgotten). */
export interface MediaRemover {
  /** Deletes the item's files; false when there were none. */
  remove(token: string): Promise<boolean>;
}

export interface MediaPreparerDeps {
  fetcher: MediaFetcher;
  files: MediaFiles;
  tokens: MediaTokens;
  /** PUBLIC_URL, without a trailing slash. */
  publicUrl: string;
  maxBytes: number;
  retentionS: number;
  /** Fetch tries per item before the message goes out with a note instead (default 3). */
  tries?: number;
  /** Waits between tries (default 1 s, 3 s): long enough for media Twilio has not finished storing. */
  retryDelaysMs?: number[];
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

type Rehosted = { url: string } | { note: string };

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    // The signal lives as long as the delivery engine: take the listener off again, or they pile up.
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

function megabytes(n: number): string {
  const mb = n / (1024 * 1024);
  return mb >= 1 ? `${Number(mb.toFixed(1))} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;
}

export function createMediaPreparer(deps: MediaPreparerDeps) {
  const tries = Math.max(1, deps.tries ?? 3);
  const delays = deps.retryDelaysMs ?? [1000, 3000];
  const sleep = deps.sleep ?? defaultSleep;

  const urlOf = (token: string, m: StoredMedia) => `${deps.publicUrl}/media/${token}/${m.filename}`;
  const tooLarge = (src: MediaSource) => ({ note: `[${nounOf(src.contentType)} was not shown: it is larger than this gateway's limit of ${megabytes(deps.maxBytes)}]` });

  async function rehostOne(messageId: string, owner: string, index: number, src: MediaSource, signal?: AbortSignal): Promise<Rehosted> {
    // A type the provider already named and we refuse is not fetched at all.
    if (src.contentType && !mediaTypeOf(src.contentType)) return refusedType(src.contentType);
    // The account is part of the key: a message id is the provider's id, which another account's
    // webhook could name too, and must not be handed the file re-hosted for this one.
    const token = await deps.tokens.reserve(src.account ? `${src.account}:${messageId}:${index}` : `${messageId}:${index}`, deps.retentionS, owner);
    const existing = await deps.files.get(token);
    if (existing) return { url: urlOf(token, existing) }; // a redelivery: same URL as the first time
    let reason = "";
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (attempt > 1) await sleep(delays[Math.min(attempt - 2, delays.length - 1)] ?? 1000, signal);
      if (signal?.aborted) throw new RetryLater("stopping while fetching media");
      let fetched: FetchedMedia;
      try {
        fetched = await deps.fetcher.fetch(src.url, { ...(src.account ? { account: src.account } : {}), ...(signal ? { signal } : {}) });
      } catch (err) {
        if (signal?.aborted) throw new RetryLater("stopping while fetching media");
        // Not about the media (the credentials lookup failed, e.g. Redis is away): the delivery engine retries.
        if (!(err instanceof MediaFetchError)) throw err;
        reason = err.message;
        deps.log.warn({ msgId: messageId, index, attempt, reason }, "media fetch failed");
        if (err.permanent) break;
        continue;
      }
      // The answer's own type wins (it describes the bytes); the webhook's is the fallback.
      const declared = fetched.contentType ?? src.contentType;
      const type = mediaTypeOf(declared);
      if (!type) {
        fetched.discard();
        return refusedType(declared);
      }
      if (fetched.length !== undefined && fetched.length > deps.maxBytes) {
        fetched.discard();
        return tooLarge(src);
      }
      try {
        const stored = await deps.files.put(
          token,
          { contentType: type.contentType, filename: `${type.kind.stem}.${type.kind.ext}`, expiresAt: Date.now() + deps.retentionS * 1000 },
          fetched.body,
          deps.maxBytes,
        );
        deps.log.info({ msgId: messageId, index, size: stored.size, contentType: stored.contentType }, "media re-hosted");
        return { url: urlOf(token, stored) };
      } catch (err) {
        if (err instanceof MediaTooLargeError) return tooLarge(src);
        if (signal?.aborted) throw new RetryLater("stopping while fetching media");
        // A body cut off mid-way, or a disk in trouble: worth another try.
        reason = err instanceof Error ? err.message : String(err);
        deps.log.warn({ msgId: messageId, index, attempt, reason }, "media could not be stored");
      }
    }
    return { note: `[${nounOf(src.contentType)} could not be fetched from the provider${reason ? ` (${reason})` : ""}]` };
  }

  function refusedType(contentType: string | undefined): Rehosted {
    return { note: `[a file was not shown: ${contentType ? `files of type ${contentType.split(";")[0]!.trim().slice(0, 80)}` : "files without a content type"} are not accepted by this gateway]` };
  }

  /**
   * The item ready to render: each announced media item replaced by the gateway's URL (as OOB and in
   * the body), or by a note saying why it is missing; the text is never lost. Other items pass as is.
   */
  async function prepare(item: XmppDelivery, meta: Pick<DeliveryMeta, "signal">): Promise<XmppDelivery> {
    if (item.kind !== "chat" || !item.media?.length) return item;
    const owner = item.to.split("/")[0]!;
    const results = await Promise.all(item.media.map((src, i) => rehostOne(item.id, owner, i, src, meta.signal)));
    const urls = results.flatMap((r) => ("url" in r ? [r.url] : []));
    const notes = results.flatMap((r) => ("note" in r ? [r.note] : []));
    const { media: _sources, ...rest } = item;
    // Every client shows the body; not every client renders OOB, so the URLs go in the body too.
    return { ...rest, body: [item.body, ...urls, ...notes].filter((s) => s.length > 0).join("\n"), mediaUrls: [...item.mediaUrls, ...urls] };
  }

  return { prepare };
}

export type MediaPreparer = ReturnType<typeof createMediaPreparer>;

/** The XMPP sink with media prepared first. Offline, nothing is fetched: the delivery waits anyway. */
export function withMediaPreparation(sink: XmppOut, preparer: MediaPreparer): XmppOut {
  return {
    isOnline: () => sink.isOnline(),
    barrier: () => sink.barrier(),
    async deliver(item, meta) {
      if (!sink.isOnline()) throw new RetryLater("XMPP server not connected");
      return sink.deliver(await preparer.prepare(item, meta), meta);
    },
  };
}
