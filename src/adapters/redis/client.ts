// The Redis connection: one Redis at REDIS_URL, or (Sentinel mode) whichever primary the Sentinels name,
// found and followed by node-redis's own Sentinel client. Tuned so that a dead or silent Redis is noticed
// within a few seconds rather than hanging a Twilio webhook (15 s budget, no redelivery): the inbound
// route then spools to the journal. What the Sentinel client does during a failover is in
// docs/facts/redis.md.
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  createSentinel,
  DisconnectsClientError,
  ErrorReply,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from "redis";
import { ReplicasBehindError } from "./replicas.js";

export interface RedisTuning {
  /** A command fails after this long without an answer (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs: number;
  /** Cap of the reconnect backoff. */
  reconnectMaxMs?: number;
}

const DEFAULT_TUNING: RedisTuning = { commandTimeoutMs: 2000 };

/** Forever, with capped exponential backoff and jitter (so several gateways do not reconnect in step). */
const backoff = (cap: number) => (retries: number) => Math.round(Math.min(100 * 2 ** retries, cap) * (0.5 + Math.random() / 2));

/** What every connection to a data node uses: the single client, and each of the Sentinel client's. */
function nodeOptions(tuning: RedisTuning) {
  const t = tuning.commandTimeoutMs;
  return {
    // While disconnected, fail at once instead of queueing until a reconnect that may never come:
    // the caller (a webhook) must learn in time that it has to use the journal. (The Sentinel client
    // re-runs such a command on the primary it finds next, docs/facts/redis.md.)
    disableOfflineQueue: true,
    // A hung or unreachable Redis never closes the socket: declare it dead after t ms of silence. The
    // PING every t/2 keeps a healthy idle connection (and one parked in a blocking read shorter than
    // t/2 + t, see duplicateForBlocking) from tripping it.
    pingInterval: Math.max(50, Math.floor(t / 2)),
    socket: {
      connectTimeout: t,
      socketTimeout: t,
      // Returning a number also for SocketTimeoutError matters: the library's default gives up on it.
      reconnectStrategy: backoff(tuning.reconnectMaxMs ?? 5000),
    },
  };
}

function makeClient(url: string, tuning: RedisTuning = DEFAULT_TUNING) {
  return createClient({
    url,
    ...nodeOptions(tuning),
    // No per-command timeout (node-redis arms an AbortSignal timer for each command, 5 s by default: a
    // few per cent of the gateway's CPU at load). With the offline queue off a command is written at
    // once, and a written command is bounded by socketTimeout.
    commandOptions: { timeout: 0 },
  });
}

/** Sentinel mode: the Sentinels to ask, the name they monitor the primary under, and the passwords. */
export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  name: string;
  /** The data nodes' password (REDIS_PASSWORD). */
  password?: string;
  /** The Sentinels' own password (REDIS_SENTINEL_PASSWORD). */
  sentinelPassword?: string;
}

function makeSentinel(target: SentinelTarget, tuning: RedisTuning = DEFAULT_TUNING) {
  return createSentinel({
    name: target.name,
    sentinelRootNodes: target.sentinels,
    // One connection to the primary carries every command, reserved: WAIT (replicas.ts) only proves the
    // writes of the connection it is sent on, and without the reservation a command could overtake one
    // made before it while the client takes its connection from the pool (docs/facts/redis.md).
    masterPoolSize: 1,
    reserveClient: true,
    commandOptions: { timeout: 0 },
    nodeClientOptions: sentinelNodeOptions(target, tuning, tuning.commandTimeoutMs),
    sentinelClientOptions: {
      socket: { connectTimeout: tuning.commandTimeoutMs },
      ...(target.sentinelPassword ? { password: target.sentinelPassword } : {}),
    },
  });
}

/** The client of one Redis at a URL, with every command and its lifecycle (tests, the CLI). */
export type RedisClient = ReturnType<typeof makeClient>;
type SentinelClient = ReturnType<typeof makeSentinel>;

/** The members both clients have with the same signature (the commands, isReady), lifecycle aside. */
type SharedMembers = { [K in keyof RedisClient & keyof SentinelClient]: SentinelClient[K] extends RedisClient[K] ? K : never }[keyof RedisClient & keyof SentinelClient];
type Lifecycle = "connect" | "close" | "destroy" | "isOpen";

/**
 * What the stores use: every Redis command, MULTI and isReady, the same in both modes. Connecting, closing
 * and events belong to the RedisConnection that made it.
 */
export type Redis = Pick<RedisClient, Exclude<SharedMembers, Lifecycle>> & {
  multi(): ReturnType<RedisClient["multi"]>;
  MULTI(): ReturnType<RedisClient["multi"]>;
};

/** A connection of its own for blocking reads (duplicateForBlocking), opened and closed by its user. */
export type BlockingRedis = Redis & {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  /** Ends a waiting read at once. */
  destroy(): void;
  on(event: "error", listener: (err: Error) => void): unknown;
};

/** Where the stores' commands go, and how that connection is doing. */
export interface RedisConnection {
  readonly mode: "single" | "sentinel";
  /** What the stores send their commands through. */
  readonly redis: Redis;
  /** The Redis the commands go to now (REDIS_URL's, or the primary the Sentinels named); undefined while none answers. */
  primary(): { host: string; port: number } | undefined;
  /**
   * Changes whenever the connection the commands travel on may have been replaced (a reconnect, a new
   * primary): a WAIT only proves the writes made on its own connection (replicas.ts).
   */
  epoch(): number;
  /** Called each time Redis (again) takes commands: at the start, after a reconnect or a failover. */
  onReady(listener: () => void): void;
  close(): Promise<void>;
}

/** Redis at a URL, or the Sentinels to ask for the primary. */
export type RedisTarget = { url: string } | SentinelTarget;

/** The settings that say where Redis is (src/config.ts). */
export interface RedisSettings {
  REDIS_URL: string;
  REDIS_SENTINELS?: string[] | undefined;
  REDIS_SENTINEL_NAME?: string | undefined;
  REDIS_PASSWORD?: string | undefined;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
}

/** The Sentinels to ask (REDIS_SENTINELS, "host:port" each), else REDIS_URL. */
export function redisTarget(c: RedisSettings): RedisTarget {
  if (!c.REDIS_SENTINELS || !c.REDIS_SENTINEL_NAME) return { url: c.REDIS_URL };
  return {
    sentinels: c.REDIS_SENTINELS.map((hp) => {
      const i = hp.lastIndexOf(":");
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    }),
    name: c.REDIS_SENTINEL_NAME,
    ...(c.REDIS_PASSWORD ? { password: c.REDIS_PASSWORD } : {}),
    ...(c.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: c.REDIS_SENTINEL_PASSWORD } : {}),
  };
}

function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([p.then(() => undefined), waited]).finally(() => clearTimeout(timer));
}

/**
 * Connects, waiting at most `firstWaitMs` for the first connection, and keeps reconnecting with capped
 * backoff. A gateway started while Redis is away therefore still comes up: webhooks go to the journal
 * and /readyz says "degraded" until Redis answers (refusing to start would leave Twilio nobody to talk to).
 */
export async function connectRedis(url: string, onError: (err: Error) => void, tuning?: RedisTuning, firstWaitMs = 2 * (tuning ?? DEFAULT_TUNING).commandTimeoutMs): Promise<RedisClient> {
  const client = makeClient(url, tuning);
  client.on("error", onError);
  const connected = client.connect().then(
    () => true,
    (err: Error) => {
      onError(err); // only when destroyed before it ever connected
      return false;
    },
  );
  await waitAtMost(connected, firstWaitMs);
  return client;
}

/** What a connection reports: its errors (required), and in Sentinel mode each new primary. */
export interface RedisEvents {
  error(err: Error): void;
  primary?(node: { host: string; port: number }): void;
}

/** Opens the stores' connection in either mode (same first wait and reconnecting as connectRedis). */
export async function openRedis(target: RedisTarget, on: RedisEvents, tuning?: RedisTuning, firstWaitMs = 2 * (tuning ?? DEFAULT_TUNING).commandTimeoutMs): Promise<RedisConnection> {
  if ("url" in target) return openSingle(target.url, on.error, tuning, firstWaitMs);
  return openSentinel(target, on, tuning ?? DEFAULT_TUNING, firstWaitMs);
}

async function openSingle(url: string, onError: (err: Error) => void, tuning: RedisTuning | undefined, firstWaitMs: number): Promise<RedisConnection> {
  const client = await connectRedis(url, onError, tuning, firstWaitMs);
  let epoch = 0;
  // Every new socket is a new client on the server, with nothing written yet.
  for (const event of ["connect", "error", "end"]) client.on(event, () => epoch++);
  const u = new URL(url);
  return {
    mode: "single",
    redis: client,
    primary: () => (client.isReady ? { host: u.hostname, port: Number(u.port || 6379) } : undefined),
    epoch: () => epoch,
    onReady: (listener) => void client.on("ready", listener),
    close: async () => client.destroy(),
  };
}

type Method = (...args: unknown[]) => unknown;

/**
 * `target` seen through a Proxy that routes each method call through `wrap` (node-redis builds its command
 * methods at run time, so they cannot be listed here). `Multi` (a class) and `constructor` pass untouched.
 */
function view<T extends object>(target: T, wrap: (name: string | symbol, method: Method, self: T) => Method): T {
  const methods = new Map<string | symbol, Method>();
  const proxy: T = new Proxy(target, {
    get(t, name) {
      const value: unknown = Reflect.get(t, name, t);
      if (typeof value !== "function" || name === "Multi" || name === "constructor") return value;
      let m = methods.get(name);
      if (m === undefined) {
        m = wrap(name, value as Method, proxy);
        methods.set(name, m);
      }
      return m;
    },
  });
  return proxy;
}

async function openSentinel(target: SentinelTarget, on: RedisEvents, tuning: RedisTuning, firstWaitMs: number): Promise<RedisConnection> {
  const onError = on.error;
  const sentinel = makeSentinel(target, tuning);
  let epoch = 0;
  // Set by "ready", cleared when the client is closed (its first connect gave up): in between, a failover
  // makes commands wait for the next primary (the client re-runs them); outside, they fail at once.
  let opened = false;
  let closing = false;
  // Required: without a listener, an error of the Sentinel client's pub/sub connection ends the process.
  sentinel.on("error", (err: unknown) => onError(err instanceof Error ? err : new Error(String(err))));
  sentinel.on("client-error", (e: { type: string; node?: { host: string; port: number }; error: Error }) => {
    if (e.type === "MASTER") epoch++;
    onError(new Error(`${e.type.toLowerCase()} ${e.node ? `${e.node.host}:${e.node.port}` : ""}: ${e.error.message}`, { cause: e.error }));
  });
  sentinel.on("topology-change", (e: { type: string; node?: { host: string; port: number } }) => {
    if (e.type !== "MASTER_CHANGE") return;
    epoch++;
    if (e.node) on.primary?.(e.node);
  });
  // Why it cannot connect to the primary (a wrong REDIS_PASSWORD, say) it tells only its tracer.
  sentinel.setTracer(
    new (class extends Array<string> {
      override push(...lines: string[]): number {
        // Called for every command too: keep the common case to one comparison.
        for (const line of lines) if (line.startsWith("#connect: exception ")) onError(new Error(`no primary yet: ${line.slice(20)}`));
        return 0;
      }
    })(),
  );
  sentinel.on("reconnecting", () => epoch++);
  sentinel.on("ready", () => {
    epoch++;
    opened = true;
  });
  sentinel.on("end", () => {
    epoch++;
    opened = false;
  });

  // node-redis gives up a first connect after maxCommandRediscovers tries and closes the client; the
  // gateway keeps trying, as it does in REDIS_URL mode.
  const retry = backoff(tuning.reconnectMaxMs ?? 5000);
  const connectForever = async (): Promise<void> => {
    for (let attempt = 0; !closing; attempt++) {
      try {
        await sentinel.connect();
        return;
      } catch (err) {
        if (closing) return;
        onError(err instanceof Error ? err : new Error(String(err)));
        await new Promise((resolve) => setTimeout(resolve, retry(attempt)));
      }
    }
  };
  const connecting = connectForever();
  await waitAtMost(connecting, firstWaitMs);

  const redis = view(sentinel, (name, method, self) =>
    // MULTI is built on the view, so that its EXEC passes the check below too.
    name === "multi" || name === "MULTI"
      ? (...args) => Reflect.apply(method, self, args)
      : (...args) =>
          // A closed client would fail with a TypeError (it has no primary connection at all): say "offline".
          opened ? Reflect.apply(method, sentinel, args) : Promise.reject(new ClientOfflineError()),
  ) as unknown as Redis;
  blockingFactories.set(redis, (blockMs) => blockingSentinel(sentinel.duplicate({ nodeClientOptions: sentinelNodeOptions(target, tuning, blockMs + tuning.commandTimeoutMs) })));

  return {
    mode: "sentinel",
    redis,
    primary: () => sentinel.getMasterNode(),
    epoch: () => epoch,
    onReady: (listener) => void sentinel.on("ready", listener),
    async close() {
      closing = true;
      await sentinel.destroy();
      await connecting;
    },
  };
}

/** The options of a Sentinel client's connections to the data nodes, which may wait `socketTimeoutMs` for a reply. */
function sentinelNodeOptions(target: SentinelTarget, tuning: RedisTuning, socketTimeoutMs: number) {
  const node = nodeOptions(tuning);
  return { ...node, socket: { ...node.socket, socketTimeout: socketTimeoutMs }, ...(target.password ? { password: target.password } : {}) };
}

/** A Sentinel client of its own whose destroy() returns at once (a reader closes it synchronously). */
function blockingSentinel(s: SentinelClient): BlockingRedis {
  return view(s, (name, method) => (name === "destroy" ? () => void s.destroy().catch(() => undefined) : (...args) => Reflect.apply(method, s, args))) as unknown as BlockingRedis;
}

const blockingFactories = new WeakMap<object, (blockMs: number) => BlockingRedis>();

/** True when Redis answers PING within `ms` (a silent Redis answers nothing: the probe is bounded on its own). */
export async function pingWithin(redis: Redis, ms: number): Promise<boolean> {
  if (!redis.isReady) return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([redis.ping().then((p) => p === "PONG"), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A second connection for blocking reads (XREADGROUP … BLOCK blockMs): a BLOCK on the stores'
 * connection would hold up every command behind it. Its silence timeout must outlast the block, or a
 * healthy idle read would be cut as a dead socket; everything else is inherited. In Sentinel mode it is
 * a Sentinel client of its own, so it follows a failover like the stores' connection.
 */
export function duplicateForBlocking(redis: Redis, blockMs: number): BlockingRedis {
  const factory = blockingFactories.get(redis);
  if (factory) return factory(blockMs);
  const client = redis as RedisClient;
  const socket = client.options?.socket ?? {};
  const base = socket.socketTimeout ?? DEFAULT_TUNING.commandTimeoutMs;
  const blocking: RedisClient = client.duplicate({ socket: { ...socket, socketTimeout: blockMs + base } });
  return blocking;
}

const UNAVAILABLE_ERRORS = [
  ClientOfflineError,
  ClientClosedError,
  ConnectionTimeoutError,
  DisconnectsClientError,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
  ReplicasBehindError,
];

// Replies that mean "this Redis cannot store right now" (loading its AOF, failing to persist, a
// replica, out of memory), as opposed to a command that is wrong and would fail again.
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MISCONF|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|OOM)\b/;

// What the Sentinel client throws when it gave up finding a primary (sentinel/index.js, plain Errors).
const NO_PRIMARY = /^(None of the sentinels are available|no valid master node|Master Node Not Enumerated|couldn't connect to any sentinels)/;

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/** True when `err` says Redis is unreachable or cannot store for now (retry later / spool), not a bug. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (UNAVAILABLE_ERRORS.some((cls) => err instanceof cls)) return true;
  if (err instanceof ErrorReply) return UNAVAILABLE_REPLY.test(err.message);
  if (NO_PRIMARY.test(err.message)) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === "string" && NETWORK_CODES.has(code);
}
