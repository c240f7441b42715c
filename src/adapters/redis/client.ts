// The Redis connection. Tuned so that a dead or silent Redis is noticed within a few seconds rather than
// hanging a Twilio webhook (15 s budget, no redelivery): the inbound route then spools to the journal.
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  DisconnectsClientError,
  ErrorReply,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from "redis";

export interface RedisTuning {
  /** A command fails after this long without an answer (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs: number;
  /** Cap of the reconnect backoff. */
  reconnectMaxMs?: number;
}

const DEFAULT_TUNING: RedisTuning = { commandTimeoutMs: 2000 };

function makeClient(url: string, tuning: RedisTuning = DEFAULT_TUNING) {
  const t = tuning.commandTimeoutMs;
  const cap = tuning.reconnectMaxMs ?? 5000;
  return createClient({
    url,
    // While disconnected, fail at once instead of queueing until a reconnect that may never come:
    // the caller (a webhook) must learn in time that it has to use the journal.
    disableOfflineQueue: true,
    // No per-command timeout (node-redis arms an AbortSignal timer for each command, 5 s by default: a
    // few per cent of the gateway's CPU at load). With the offline queue off a command is written at
    // once, and a written command is bounded by socketTimeout below.
    commandOptions: { timeout: 0 },
    // A hung or unreachable Redis never closes the socket: declare it dead after t ms of silence. The
    // PING every t/2 keeps a healthy idle connection (and one parked in a blocking read shorter than
    // t/2 + t, see duplicateForBlocking) from tripping it.
    pingInterval: Math.max(50, Math.floor(t / 2)),
    socket: {
      connectTimeout: t,
      socketTimeout: t,
      // Forever, with capped exponential backoff and jitter (so several gateways do not reconnect in step).
      // Returning a number also for SocketTimeoutError matters: the library's default gives up on it.
      reconnectStrategy: (retries: number) => Math.round(Math.min(100 * 2 ** retries, cap) * (0.5 + Math.random() / 2)),
    },
  });
}

export type Redis = ReturnType<typeof makeClient>;

/**
 * Connects, waiting at most `firstWaitMs` for the first connection, and keeps reconnecting with capped
 * backoff. A gateway started while Redis is away therefore still comes up: webhooks go to the journal
 * and /readyz says "degraded" until Redis answers (refusing to start would leave Twilio nobody to talk to).
 */
export async function connectRedis(url: string, onError: (err: Error) => void, tuning?: RedisTuning, firstWaitMs = 2 * (tuning ?? DEFAULT_TUNING).commandTimeoutMs): Promise<Redis> {
  const client = makeClient(url, tuning);
  client.on("error", onError);
  const connected = client.connect().then(
    () => true,
    (err: Error) => {
      onError(err); // only when destroyed before it ever connected
      return false;
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), firstWaitMs)));
  await Promise.race([connected, waited]);
  clearTimeout(timer);
  return client;
}

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
 * A second connection for blocking reads (XREADGROUP … BLOCK blockMs). Its silence timeout must outlast
 * the block, or a healthy idle read would be cut as a dead socket; everything else is inherited.
 */
export function duplicateForBlocking(redis: Redis, blockMs: number): Redis {
  const socket = redis.options?.socket ?? {};
  const base = socket.socketTimeout ?? DEFAULT_TUNING.commandTimeoutMs;
  return redis.duplicate({ socket: { ...socket, socketTimeout: blockMs + base } });
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
];

// Replies that mean "this Redis cannot store right now" (loading its AOF, failing to persist, a
// replica, out of memory), as opposed to a command that is wrong and would fail again.
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MISCONF|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|OOM)\b/;

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/** True when `err` says Redis is unreachable or cannot store for now (retry later / spool), not a bug. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (UNAVAILABLE_ERRORS.some((cls) => err instanceof cls)) return true;
  if (err instanceof ErrorReply) return UNAVAILABLE_REPLY.test(err.message);
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === "string" && NETWORK_CODES.has(code);
}
