// Starts the real gateway in-process against real servers, with a silent (or LOG=1: visible) logger.
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway, type Gateway } from "../../src/app/gateway.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { removeDirAtExit } from "./processes.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";

export interface TestGateway {
  gateway: Gateway;
  fatal: string[];
  /** Admin API call through inject (no socket). */
  admin(method: "GET" | "PUT" | "DELETE" | "POST", url: string, body?: unknown): Promise<{ status: number; json: unknown; headers: Record<string, unknown> }>;
  waitOnline(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** `logLines`: every log line (JSON, at LOG_LEVEL=debug unless env says otherwise) is pushed there. */
export async function startGateway(env: Record<string, string>, opts: { listen?: boolean; logLines?: string[] } = {}): Promise<TestGateway> {
  // Each gateway its own journal: a shared ./data/journal would let one test replay another's SMS.
  const journalDir = mkdtempSync(join(tmpdir(), "sb-journal-"));
  removeDirAtExit(journalDir);
  // Likewise re-hosted media (a test may pass its own MEDIA_DIR to look at the files).
  const mediaDir = mkdtempSync(join(tmpdir(), "sb-media-"));
  removeDirAtExit(mediaDir);
  // Tests send in bursts no person would: the per-user rate is off unless a test sets it (limits.test.ts).
  const config = loadConfig({
    ADMIN_TOKEN,
    HTTP_PORT: "0",
    USER_MESSAGES_PER_MINUTE: "0",
    LOG_LEVEL: process.env.LOG || opts.logLines ? "debug" : "silent",
    JOURNAL_DIR: journalDir,
    MEDIA_DIR: mediaDir,
    // Each gateway a name of its own (they would otherwise all be this host): two at once on one Redis
    // are two instances of one deployment, and a restarted one takes over what the last left.
    INSTANCE_ID: `test-${randomUUID().slice(0, 8)}`,
    ...env,
  });
  const fatal: string[] = [];
  const lines = opts.logLines;
  const logger = lines ? createLogger(config.LOG_LEVEL, { write: (line: string) => void lines.push(line) }) : createLogger(config.LOG_LEVEL);
  const gateway = await createGateway(config, logger, { onFatal: (m) => fatal.push(m) });
  await gateway.start({ listen: opts.listen ?? false });
  return {
    gateway,
    fatal,
    async admin(method, url, body) {
      const res = await gateway.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      return { status: res.statusCode, json: res.body ? (JSON.parse(res.body) as unknown) : undefined, headers: res.headers };
    },
    async waitOnline(timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!gateway.xmppState().online) {
        if (Date.now() > end) throw new Error(`component not online after ${timeoutMs} ms: ${JSON.stringify(gateway.xmppState())}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: () => gateway.stop(),
  };
}
