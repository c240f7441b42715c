// Environment → typed config, validated once at start. Every variable has a description; a test checks
// that .env.example lists exactly these names.
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { isSupportedCountry } from "libphonenumber-js";
import { parentDomain } from "./core/policy/access.js";

const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => v === "true" || v === "1" || v === "yes");

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A comma-separated list, each item checked by `item`; "*" alone means "any". */
const list = (item: RegExp, what: string) =>
  z
    .string()
    .transform((v) =>
      v
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .refine((xs) => xs.length > 0, "must not be empty")
    .refine((xs) => (xs.includes("*") ? xs.length === 1 : xs.every((x) => item.test(x))), `must be * or a comma-separated list of ${what}`);

const NUMBER_TYPES = ["PREMIUM_RATE", "SHARED_COST", "UAN", "PAGER", "VOICEMAIL", "PERSONAL_NUMBER", "TOLL_FREE", "FIXED_LINE", "VOIP", "FIXED_LINE_OR_MOBILE", "MOBILE"] as const;

const secretBase64 = z.string().refine((v) => Buffer.from(v, "base64").length === 32, "must be 32 random bytes, base64-encoded (openssl rand -base64 32)");

/**
 * SHORT_CODES: "deny", "allow", or the short codes allowed (3–8 digits each, as src/core/model/addresses.ts
 * reads a short-code contact).
 */
const shortCodes = z
  .string()
  .transform((v) => v.trim())
  .pipe(
    z.union([
      z.enum(["deny", "allow"]),
      z
        .string()
        .transform((v) =>
          v
            .split(",")
            .map((x) => x.trim())
            .filter(Boolean),
        )
        .refine((xs) => xs.length > 0 && xs.every((x) => /^[0-9]{3,8}$/.test(x)), "must be deny, allow, or a comma-separated list of short codes (3 to 8 digits each, e.g. 72975,33733)"),
    ]),
  );

/** proxy-addr's names for address ranges (Fastify's trustProxy accepts them with the addresses). */
const PROXY_RANGE_NAMES = ["loopback", "linklocal", "uniquelocal"];

/** An address or CIDR range as ipaddr.js reads it, in the dotted or colon form only ("1" is not 0.0.0.1). */
function proxyEntryProblem(entry: string): string | undefined {
  if (PROXY_RANGE_NAMES.includes(entry)) return undefined;
  const [addr = "", bits, ...rest] = entry.split("/");
  const v4 = ipaddr.IPv4.isValidFourPartDecimal(addr);
  if (rest.length > 0 || (!v4 && !(addr.includes(":") && ipaddr.IPv6.isValid(addr)))) {
    return `'${entry}' is not an IP address or CIDR range; set the proxies' addresses, comma-separated (e.g. 10.0.0.0/8 or 192.168.1.10,fd00::/8), or loopback, uniquelocal or linklocal`;
  }
  if (bits === undefined) return undefined;
  const prefix = /^[0-9]{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= (v4 ? 32 : 128))) return `'${entry}' has no valid prefix length (0–${v4 ? 32 : 128})`;
  if (prefix === 0) return `'${entry}' trusts every address, which would let any client choose its own with X-Forwarded-For; name the proxies' own range`;
  // An IPv4-mapped range needs 96 bits more than its IPv4 prefix (::ffff:10.0.0.0/104, not /8): a short
  // one would cover far more than the IPv4 block it seems to name.
  if (!v4 && ipaddr.IPv6.parse(addr).isIPv4MappedAddress() && prefix < 96) return `'${entry}' is an IPv4-mapped range with an IPv4-sized prefix; write the IPv4 range itself (e.g. 10.0.0.0/8)`;
  return undefined;
}

/**
 * TRUST_PROXY: false, or the addresses of the proxies in front of the gateway. `true` (trust every
 * hop) lets a client pick its own address for the per-address limits with X-Forwarded-For; a hop
 * count cannot tell a proxy from a client that reaches the gateway directly with a forged header, and
 * Fastify has ignored hop counts since 5.12.1. Both are refused at start, saying what to set instead.
 */
const trustProxy = z.string().transform((raw, ctx): false | string => {
  const v = raw.trim();
  if (v === "false") return false;
  const instead = "set the addresses of the proxies in front of the gateway instead (e.g. 10.0.0.0/8, or loopback when the proxy runs on the same host), or false";
  if (/^(true|yes|on)$/i.test(v)) {
    ctx.addIssue({ code: "custom", message: `true would let any client choose its own address with X-Forwarded-For (and so escape the per-address limits); ${instead}` });
    return z.NEVER;
  }
  if (/^[0-9]+$/.test(v)) {
    ctx.addIssue({
      code: "custom",
      message: `a hop count (${v}) cannot tell a proxy from a client that reaches the gateway directly and writes its own X-Forwarded-For (Fastify ignores hop counts); ${instead}`,
    });
    return z.NEVER;
  }
  const entries = v
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  const problem = entries.length === 0 ? "must be false or the proxies' addresses" : entries.map(proxyEntryProblem).find(Boolean);
  if (problem) {
    ctx.addIssue({ code: "custom", message: problem });
    return z.NEVER;
  }
  return entries.join(",");
});

/** Each entry: the zod type (with its default) and the one-line description shown in .env.example. */
export const CONFIG_VARIABLES = {
  XMPP_SERVICE: {
    schema: z
      .string()
      .regex(/^xmpp:\/\/[^/]+$/, "must look like xmpp://host:port")
      .default("xmpp://127.0.0.1:5347"),
    doc: "Component listener of your XMPP server (xmpp://host:port). Plain TCP: keep it on loopback or a private network.",
  },
  XMPP_DOMAIN: {
    schema: z
      .string()
      .min(1)
      .regex(/^[a-z0-9.-]+$/i, "must be a domain name such as sms.example.com"),
    doc: "The component's domain, e.g. sms.example.com",
  },
  XMPP_SECRET: { schema: z.string().min(1), doc: "Shared secret of the component, as set in the XMPP server's component configuration" },
  REDIS_URL: { schema: z.string().url().default("redis://127.0.0.1:6379"), doc: "Redis connection URL (run Redis with appendonly yes)" },
  REDIS_SENTINELS: {
    schema: list(/^[^\s:,]+:[0-9]{1,5}$/, "host:port addresses (e.g. 10.0.0.5:26379,10.0.0.6:26379)").optional(),
    doc: "Sentinel mode: the Redis Sentinels to ask for the current primary (host:port, comma-separated); REDIS_URL is then not used",
  },
  REDIS_SENTINEL_NAME: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, . _ - only")
      .optional(),
    doc: "The primary's name the Sentinels monitor (sentinel monitor <name> …); required with REDIS_SENTINELS",
  },
  REDIS_PASSWORD: { schema: z.string().min(1).optional(), doc: "Sentinel mode: the password of the primary and replicas (requirepass); with REDIS_URL, put it in the URL instead" },
  REDIS_SENTINEL_PASSWORD: { schema: z.string().min(1).optional(), doc: "Sentinel mode: the Sentinels' own password (their requirepass), when they have one" },
  REDIS_MIN_REPLICAS: {
    schema: int(0, 16).default(0),
    doc: "A write the gateway acknowledges must have reached this many Redis replicas (WAIT) first; otherwise it is treated as Redis being away (inbound SMS go to the journal, other senders are asked to retry). 0: no replica is waited for",
  },
  REDIS_REPLICA_WAIT_MS: { schema: int(10, 10_000).default(500), doc: "How long an acknowledged write waits for REDIS_MIN_REPLICAS replicas (WAIT timeout)" },
  REDIS_COMMAND_TIMEOUT_MS: {
    schema: int(100, 10_000).default(2000),
    doc: "A Redis command (or a silent Redis connection) fails after this long, so a webhook spools to the journal well within Twilio's 15 s timeout",
  },
  JOURNAL_DIR: {
    schema: z.string().min(1).default("./data/journal"),
    doc: "Directory of the local append-only journal that keeps inbound SMS while Redis is unreachable (one gateway per directory; keep it on a persistent disk)",
  },
  JOURNAL_REPLAY_INTERVAL_MS: { schema: int(50, 600_000).default(1000), doc: "How often a non-empty journal is replayed into Redis (also replayed on start-up and when Redis reconnects)" },
  HTTP_HOST: { schema: z.string().default("127.0.0.1"), doc: "Address the HTTP server listens on" },
  HTTP_PORT: { schema: int(0, 65535).default(8080), doc: "Port the HTTP server listens on" },
  PUBLIC_URL: {
    schema: z
      .string()
      .url()
      .transform((u) => u.replace(/\/+$/, ""))
      .optional(),
    doc: "How Twilio reaches this gateway (scheme, host and any path prefix a proxy adds); used for signatures and callbacks. Required with Twilio; the sandbox defaults to http://HTTP_HOST:HTTP_PORT",
  },
  SMS_PROVIDER: {
    schema: z.enum(["twilio", "sandbox"]).optional(),
    doc: "twilio, or sandbox to try the gateway with no SMS leaving it (outgoing texts are kept for GET /sandbox/messages)",
    defaultNote: "twilio when TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set; otherwise required",
  },
  SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: {
    schema: bool.default(false),
    doc: "Unsafe: let SMS_PROVIDER=sandbox listen on an HTTP_HOST that is not loopback (127.0.0.0/8, ::1, localhost); without it such a start is refused, since the sandbox is for trying the gateway on one machine",
  },
  TWILIO_ACCOUNT_SID: {
    schema: z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, "must be AC followed by 32 hex digits")
      .optional(),
    doc: "Twilio Account SID (AC…)",
  },
  TWILIO_AUTH_TOKEN: { schema: z.string().min(1).optional(), doc: "Twilio Auth Token (validates webhooks and authenticates API calls)" },
  TWILIO_URL_FRAGMENT: {
    schema: z
      .string()
      .regex(/^#?[a-z]{1,4}=[^#&=]*(&[a-z]{1,4}=[^#&=]*)*$/, "must look like rc=3&rp=all")
      .transform((v) => v.replace(/^#/, ""))
      .optional(),
    doc: "Connection overrides set on the Twilio webhook URLs (e.g. rc=3&rp=all); the signature check accepts the URL with and without them",
  },
  TWILIO_API_URL: { schema: z.string().url().optional(), doc: "Override of Twilio's API origin (tests use a local fake); leave unset in production" },
  ADMIN_TOKEN: { schema: z.string().min(16, "must be at least 16 characters (openssl rand -hex 24)"), doc: "Bearer token for the admin API and the sandbox routes" },
  DEFAULT_REGION: {
    schema: z
      .string()
      .length(2)
      .toUpperCase()
      .refine((r) => isSupportedCountry(r), "must be an ISO 3166 country code such as US")
      .default("US"),
    doc: "Country used to read national phone numbers (XEP-0100 translation)",
  },
  LOG_LEVEL: { schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"), doc: "pino log level" },
  SECRETS_KEY: { schema: secretBase64.optional(), doc: "32 random bytes, base64: encrypts stored secrets (openssl rand -base64 32)" },
  REGISTRATION: {
    schema: z.enum(["admin", "byo"]).default("admin"),
    doc: "How users get a number: admin (the operator links them with the admin API) or byo (users register their own Twilio account and number from their client; needs SECRETS_KEY)",
  },
  WEBHOOK_ALLOW_PRIVATE: { schema: bool.default(false), doc: "Allow webhook targets on private/loopback addresses" },
  WEBHOOK_TIMEOUT_MS: { schema: int(500, 120_000).default(10_000), doc: "Timeout of one POST to a webhook target" },
  WEBHOOK_DEADLINE_MS: {
    schema: int(1000, 7 * 86_400_000).default(3_600_000),
    doc: "An unreachable webhook target is retried (backoff with jitter) until this long after the message was sent; then a dead letter and an error reply",
  },
  WEBHOOK_IN_MAX_BACKLOG: { schema: int(1, 10_000_000).default(10_000), doc: "Message-in API answers 503 with Retry-After when more deliveries than this wait in a partition" },
  XMPP_RECONNECT_MIN_MS: { schema: int(100, 600_000).default(1000), doc: "First reconnect delay to the XMPP server (doubles with jitter)" },
  XMPP_RECONNECT_MAX_MS: { schema: int(1000, 3_600_000).default(60_000), doc: "Cap of the reconnect delay" },
  XMPP_HANDSHAKE_TIMEOUT_MS: { schema: int(500, 600_000).default(15_000), doc: "Watchdog: restart a connection that is not online this long after connecting" },
  XMPP_MAX_STANZA_BYTES: {
    schema: int(16 * 1024, 64 * 1024 * 1024).default(1024 * 1024),
    doc: "Largest stanza accepted from the XMPP server, in bytes (UTF-8, as the server writes it); a larger one is dropped unread, its sender gets a policy-violation error saying why, and the link stays up. The XMPP server has limits of its own: docs/facts/xmpp-servers.md",
  },
  TWILIO_TIMEOUT_MS: { schema: int(500, 120_000).default(15_000), doc: "Timeout of one Twilio API request" },
  TWILIO_MAX_CONNECTIONS: { schema: int(1, 1024).default(16), doc: "Concurrent connections to the Twilio API" },
  OUTBOUND_DEADLINE_MS: {
    schema: int(100, 7 * 86_400_000).default(10 * 60_000),
    doc: "Sends the provider refused as transient (429, 503, unreachable) are retried, honouring Retry-After, until this long after the first try; then the sender gets an error reply",
  },
  OUTBOUND_RETRY_BASE_MS: { schema: int(10, 600_000).default(1000), doc: "First retry delay of a transient provider failure (doubles with jitter)" },
  MESSAGE_RETENTION: { schema: int(60, 365 * 86400).default(7 * 86400), doc: "Seconds a message record is kept after its final state" },
  DEDUPE_TTL: {
    schema: int(3600, 365 * 86400).default(7 * 86400),
    doc: "Seconds an idempotency key (a Twilio MessageSid, an Idempotency-Key, a user's stanza id) is remembered, so a repeat is not delivered or texted twice; at least an hour (a captured signed webhook can be replayed once its key is forgotten)",
  },
  DEAD_LETTER_RETENTION: {
    schema: int(60, 10 * 365 * 86400).default(30 * 86400),
    doc: "Seconds a dead letter (a message given up on, body included so it can be retried) is kept; older ones are deleted",
  },
  PIPELINE_PARTITIONS: { schema: int(1, 256).default(8), doc: "Stream partitions per direction; one conversation always maps to one partition (ordering)" },
  LOOKUP_CACHE_MS: {
    schema: int(0, 60_000).default(2000),
    doc: "How long (ms) this instance may answer user ⇄ number links and webhook targets from memory (every message looks them up); changes made through this instance are seen at once, others (another instance, an edit in Redis) within this time; 0: ask Redis every time",
  },
  INSTANCE_ID: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, . _ - only")
      .optional(),
    doc: "Name of this instance in the Redis consumer group; keep it stable across restarts (default: the host name)",
  },
  XMPP_DELIVERY_DEADLINE_MS: { schema: int(60_000, 365 * 86_400_000).default(3 * 86_400_000), doc: "A message still not delivered to XMPP this long after it arrived becomes a dead letter" },
  XMPP_MAX_BOUNCES: {
    schema: int(1, 100).default(5),
    doc: "The bounce by the XMPP server (e.g. an account that does not exist yet) that makes a delivery a dead letter; before it, the delivery and the rest of its conversation wait and are tried again",
  },
  XMPP_BOUNCE_RETRY_MS: {
    schema: int(100, 3_600_000).default(5000),
    doc: "Wait after a delivery's first bounce before it is written again; each further bounce waits three times longer (5 s, 15 s, 45 s, 2¼ min…)",
  },
  XMPP_BOUNCE_RETRY_MAX_MS: { schema: int(100, 86_400_000).default(600_000), doc: "Cap of one wait after a bounce" },
  LEASE_TTL_MS: {
    schema: int(1000, 60_000).default(5000),
    doc: "How long the lease on the XMPP link (and an instance's share of the outbound work) lasts unless renewed: after a crash or a lost host another instance takes over within about this long. Shorter: faster takeover, more Redis writes, and a Redis stall this long drops the link",
  },
  RECONCILE_INTERVAL: {
    schema: int(0, 86_400)
      .refine((v) => v === 0 || v >= 10, "must be 0 (off) or at least 10 seconds (each run lists every provider account's recent messages)")
      .default(300),
    doc: "Seconds between reconciliations with the SMS provider (inbound texts and final statuses the gateway never received are fetched from its message list); also run at start; 0: off (at least 10 otherwise)",
  },
  RECONCILE_LOOKBACK: {
    schema: int(60, 30 * 86_400).default(86_400),
    doc: "Seconds the first reconciliation of a provider account (no earlier one recorded) looks back; never further than DEDUPE_TTL or XMPP_DELIVERY_DEADLINE_MS, whichever is shorter",
  },
  PIPELINE_CLAIM_IDLE_MS: { schema: int(5_000, 86_400_000).default(60_000), doc: "Work another instance left untouched this long is taken over" },
  TEST_HOLD_TO_XMPP: { schema: bool.default(false), doc: "Test only: accept messages but hold their delivery to XMPP (crash tests); never set in production" },
  MAX_SEGMENTS: {
    schema: int(1, 50).default(10),
    doc: "Longest text sent, in SMS segments (counted like Twilio: 153 GSM-7 or 67 UCS-2 characters each when split); longer ones are refused, saying why",
  },
  HTTP_BODY_LIMIT: { schema: int(1024, 10 * 1024 * 1024).default(256 * 1024), doc: "Largest accepted HTTP request body, in bytes" },
  MEDIA_DIR: {
    schema: z.string().min(1).default("./data/media"),
    doc: "Directory where incoming MMS media are kept and served from under PUBLIC_URL/media/ (persistent disk; shared by every instance behind one PUBLIC_URL)",
  },
  MEDIA_MAX_BYTES: { schema: int(1024, 100 * 1024 * 1024).default(5 * 1024 * 1024), doc: "Largest incoming media item fetched and re-hosted, in bytes; a larger one is replaced by a note" },
  MEDIA_RETENTION: { schema: int(1, 10 * 365 * 86400).default(30 * 86400), doc: "Seconds re-hosted media stay available (so archived messages keep working); then deleted" },
  MEDIA_FETCH_TIMEOUT_MS: { schema: int(500, 120_000).default(15_000), doc: "Bound on fetching one media item from the provider (redirects and body included); tried 3 times" },
  ALLOWED_DOMAINS: {
    schema: list(/^[a-z0-9-]+(\.[a-z0-9-]+)*$/i, "domains such as example.com").optional(),
    doc: "Domains whose users may register, send texts and reach webhook targets (comma-separated; * = any server on the federated network). Everyone else gets auth/forbidden",
    defaultNote: "the parent domain of XMPP_DOMAIN, e.g. example.com for sms.example.com",
  },
  USER_MESSAGES_PER_MINUTE: { schema: int(0, 1_000_000).default(30), doc: "Messages (texts, webhook messages) one user may send per minute; more are refused with policy-violation (0 = no limit)" },
  USER_SEGMENTS_PER_DAY: { schema: int(0, 100_000_000).default(500), doc: "SMS segments one user may send per day (an MMS counts 1); more are refused until the day's window ends (0 = no limit)" },
  BREAKER_SEGMENTS_PER_HOUR: {
    schema: int(0, 100_000_000).default(3000),
    doc: "Gateway-wide breaker: when all users together pass this many SMS segments in an hour, all sending stops until the hour's window ends or an operator resets it (DELETE /api/v1/breaker); 0 = off",
  },
  ALLOWED_COUNTRIES: {
    schema: list(/^[A-Z]{2}$/i, "ISO 3166 country codes such as US,CA")
      .transform((xs) => xs.map((x) => x.toUpperCase()))
      .refine((xs) => xs.every((x) => x === "*" || isSupportedCountry(x)), "must list countries known to libphonenumber (e.g. US,CA,GB)")
      .optional(),
    doc: "Countries texts may be sent to (comma-separated ISO codes; * = any)",
    defaultNote: "the country of DEFAULT_REGION",
  },
  BLOCKED_NUMBER_TYPES: {
    schema: list(new RegExp(`^(${NUMBER_TYPES.join("|")})$`), `number types (${NUMBER_TYPES.join(", ")})`).default(["PREMIUM_RATE", "SHARED_COST", "UAN", "PAGER", "VOICEMAIL", "PERSONAL_NUMBER"]),
    doc: "Destination number types refused when the type is known from the number's plan (comma-separated)",
  },
  SHORT_CODES: {
    schema: shortCodes.default("deny"),
    doc: "Short-code destinations (3–8 digits, e.g. 72975): deny (refused with policy-violation: some are premium-rate, and their cost cannot be read from a numbering plan), allow, or the short codes allowed, comma-separated. Replies from short codes always arrive",
  },
  WEBHOOK_IN_PER_MINUTE: { schema: int(0, 10_000_000).default(600), doc: "Messages one webhook token may post to the message-in API per minute; more get 429 with Retry-After (0 = no limit)" },
  ADMIN_AUTH_FAILURES_PER_MINUTE: { schema: int(1, 1_000_000).default(10), doc: "Failed admin-token checks one client address may make per minute; then 429 with Retry-After until the minute ends" },
  TRUST_PROXY: {
    schema: trustProxy.default(false),
    doc: "The reverse proxies whose X-Forwarded-For names the client address (per-address limits): false, or their addresses/CIDRs, comma-separated (e.g. 10.0.0.0/8; loopback, uniquelocal and linklocal name those ranges). true and hop counts are refused: they let a client choose its own address",
  },
  SHUTDOWN_TIMEOUT_MS: { schema: int(100, 600_000).default(10_000), doc: "Bound on a graceful stop after SIGTERM" },
} as const;

type Vars = typeof CONFIG_VARIABLES;
const shape = Object.fromEntries(Object.entries(CONFIG_VARIABLES).map(([k, v]) => [k, v.schema])) as { [K in keyof Vars]: Vars[K]["schema"] };
const envSchema = z.object(shape);
type Env = z.output<typeof envSchema>;

export type Config = Omit<Env, "SMS_PROVIDER" | "PUBLIC_URL" | "ALLOWED_DOMAINS" | "ALLOWED_COUNTRIES"> & {
  SMS_PROVIDER: "twilio" | "sandbox";
  PUBLIC_URL: string;
  ALLOWED_DOMAINS: string[];
  ALLOWED_COUNTRIES: string[];
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The sandbox must be chosen, never fallen into: a production start with no provider stops here. */
const NO_PROVIDER =
  "SMS_PROVIDER: no SMS provider is configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (and PUBLIC_URL) to send real SMS with Twilio, or SMS_PROVIDER=sandbox to try the gateway with no SMS leaving it (outgoing texts are kept for GET /sandbox/messages)";

/** Whether `host` (an HTTP_HOST) only accepts connections from this machine: 127.0.0.0/8, ::1 (or v4-mapped loopback), localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  if (!ipaddr.isValid(h)) return false;
  // process() turns ::ffff:127.0.0.1 into 127.0.0.1; 0.0.0.0 and :: (every interface) are not loopback.
  return ipaddr.process(h).range() === "loopback";
}

/** Validates `env` (process.env by default). Throws ConfigError with one line per bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings count as unset: `FOO=` in .env should fall back to the default.
  const cleaned = Object.fromEntries(Object.keys(CONFIG_VARIABLES).map((k) => [k, env[k] === "" ? undefined : env[k]]));
  const parsed = envSchema.safeParse(cleaned);
  // Named with the other missing variables, so a first start from an empty .env lists everything at once.
  const noProvider = cleaned.SMS_PROVIDER === undefined && cleaned.TWILIO_ACCOUNT_SID === undefined && cleaned.TWILIO_AUTH_TOKEN === undefined;
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${String(i.path[0] ?? "config")}: ${i.code === "invalid_type" && i.input === undefined ? "is required" : i.message}`);
    throw new ConfigError(`invalid configuration: ${[...lines, ...(noProvider ? [NO_PROVIDER] : [])].join("; ")}`);
  }
  if (noProvider) throw new ConfigError(`invalid configuration: ${NO_PROVIDER}`);
  const c = parsed.data;
  const twilioSet = [c.TWILIO_ACCOUNT_SID, c.TWILIO_AUTH_TOKEN].filter(Boolean).length;
  // Twilio credentials imply twilio (half of them is an error below); without them SMS_PROVIDER is set.
  const provider = c.SMS_PROVIDER ?? (c.TWILIO_ACCOUNT_SID ? "twilio" : "sandbox");
  if (provider === "twilio" && twilioSet !== 2) {
    throw new ConfigError(
      `invalid configuration: ${c.TWILIO_ACCOUNT_SID ? "TWILIO_AUTH_TOKEN" : "TWILIO_ACCOUNT_SID"}: is required when SMS_PROVIDER is twilio (set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)`,
    );
  }
  if (provider === "sandbox" && twilioSet === 1) {
    throw new ConfigError(`invalid configuration: ${c.TWILIO_ACCOUNT_SID ? "TWILIO_AUTH_TOKEN" : "TWILIO_ACCOUNT_SID"}: is required (half a Twilio configuration is set)`);
  }
  if ((c.REDIS_SENTINELS === undefined) !== (c.REDIS_SENTINEL_NAME === undefined)) {
    throw new ConfigError(
      c.REDIS_SENTINELS
        ? "invalid configuration: REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS (the name in the Sentinels' `sentinel monitor <name> …` line)"
        : "invalid configuration: REDIS_SENTINELS: is required with REDIS_SENTINEL_NAME (the Sentinels' host:port addresses, comma-separated)",
    );
  }
  const badPort = c.REDIS_SENTINELS?.find((hp) => !(Number(hp.slice(hp.lastIndexOf(":") + 1)) >= 1 && Number(hp.slice(hp.lastIndexOf(":") + 1)) <= 65535));
  if (badPort) throw new ConfigError(`invalid configuration: REDIS_SENTINELS: '${badPort}' has no valid port (1 to 65535)`);
  for (const name of ["REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"] as const) {
    if (c[name] !== undefined && c.REDIS_SENTINELS === undefined) {
      throw new ConfigError(`invalid configuration: ${name}: is used only with REDIS_SENTINELS (with REDIS_URL, put the password in the URL: redis://:password@host:port)`);
    }
  }
  if (c.XMPP_RECONNECT_MAX_MS < c.XMPP_RECONNECT_MIN_MS) {
    throw new ConfigError("invalid configuration: XMPP_RECONNECT_MAX_MS: must not be smaller than XMPP_RECONNECT_MIN_MS");
  }
  // The sandbox takes incoming SMS from anyone holding ADMIN_TOKEN and sends nothing: a trial on this
  // machine, not a service. Reachable from elsewhere only when the operator says so in its own words.
  if (provider === "sandbox" && !isLoopbackHost(c.HTTP_HOST) && !c.SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN) {
    throw new ConfigError(
      `invalid configuration: HTTP_HOST: ${c.HTTP_HOST} is not a loopback address, and SMS_PROVIDER=sandbox is for trying the gateway on this machine: listen on 127.0.0.1 (or ::1), configure Twilio, or set SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true to expose the sandbox on ${c.HTTP_HOST} anyway`,
    );
  }
  if (provider === "twilio" && !c.PUBLIC_URL) {
    throw new ConfigError("invalid configuration: PUBLIC_URL: is required with Twilio (the URL Twilio posts webhooks to, e.g. https://sms.example.com)");
  }
  return {
    ...c,
    SMS_PROVIDER: provider,
    PUBLIC_URL: c.PUBLIC_URL ?? `http://${c.HTTP_HOST}:${c.HTTP_PORT}`,
    ALLOWED_DOMAINS: c.ALLOWED_DOMAINS ?? [parentDomain(c.XMPP_DOMAIN)],
    ALLOWED_COUNTRIES: c.ALLOWED_COUNTRIES ?? [c.DEFAULT_REGION],
  };
}
