// The second client stack: a logged-in slixmpp client (test/clients/slix_client.py, run by Debian's
// /usr/bin/python3 with python3-slixmpp), driven by JSON actions over its stdin/stdout.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { killAtExit } from "./processes.js";
import type { XmppServer } from "./xmpp-server.js";

export const SLIX_PYTHON = "/usr/bin/python3";
export const SLIX_SCRIPT = fileURLToPath(new URL("../clients/slix_client.py", import.meta.url));

export interface SlixStanzaError {
  type: string | null;
  condition: string | null;
  text: string | null;
  code: string | null;
}

export interface SlixMessage {
  from: string | null;
  to: string | null;
  type: string;
  id: string | null;
  body: string | null;
  receipt_id: string | null;
  receipt_request: boolean;
  oob_urls: string[];
  error: SlixStanzaError | null;
  xml: string;
}

export interface SlixFormField {
  var: string | null;
  type: string | null;
  label: string | null;
  value: string | null;
  required: boolean;
}

export type SlixAction =
  | { op: "send_chat"; to: string; body?: string; id?: string; type?: string; receipt?: boolean }
  | { op: "wait_message"; from?: string; body?: string; body_contains?: string; type?: string; timeout?: number }
  | { op: "wait_receipt"; id: string; from?: string; timeout?: number }
  | { op: "wait_error"; id: string; condition?: string; timeout?: number }
  | { op: "disco_info"; to: string; node?: string; timeout?: number }
  | { op: "register_get"; to: string; timeout?: number }
  | { op: "register_set"; to: string; fields?: Record<string, string | string[]>; form?: boolean; remove?: boolean; timeout?: number }
  | { op: "messages" };

/** One action's answer; which fields are set depends on the op (see slix_client.py). */
export interface SlixResult {
  op: string;
  ok: boolean;
  /** why it failed: a timeout, an IQ error, a bad action */
  error?: string | SlixStanzaError;
  id?: string;
  message?: SlixMessage;
  messages?: SlixMessage[];
  iq_type?: string;
  from?: string;
  identities?: { category: string; type: string; name: string | null }[];
  features?: string[];
  instructions?: string | null;
  registered?: boolean;
  form?: { type: string | null; title: string | null; instructions: string | null; fields: SlixFormField[] } | null;
  fields?: string[];
  xml?: string;
}

export interface SlixClient {
  /** full JID the server bound */
  jid: string;
  bareJid: string;
  /** runs one action; a failed action resolves with ok: false (rejects only if the process died) */
  run(action: SlixAction): Promise<SlixResult>;
  /** like run(), but rejects unless ok */
  must(action: SlixAction): Promise<SlixResult>;
  /** what the script wrote to stderr (slixmpp's warnings, tracebacks) */
  stderr(): string;
  /** closes the session (EOF on stdin), SIGKILL after 3 s; idempotent */
  stop(): Promise<void>;
}

/** undefined when the slixmpp stack can run here, else why not (and what to install). */
export function slixUnavailable(): string | undefined {
  try {
    accessSync(SLIX_PYTHON, constants.X_OK);
  } catch {
    return `${SLIX_PYTHON} not found: install the Debian packages python3 and python3-slixmpp`;
  }
  return undefined;
}

function describeError(e: SlixResult["error"]): string {
  if (e === undefined) return "failed";
  return typeof e === "string" ? e : `${e.type ?? "?"}/${e.condition ?? "?"}${e.text ? ` (${e.text})` : ""}`;
}

/** Logs `username` in on `server` with slixmpp (plain TCP, SCRAM) and sends initial presence. */
export async function connectSlix(opts: { server: XmppServer; username: string; password: string; timeoutMs?: number }): Promise<SlixClient> {
  const unavailable = slixUnavailable();
  if (unavailable) throw new Error(unavailable);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const jid = `${opts.username}@${opts.server.domain}`;
  const child = spawn(
    SLIX_PYTHON,
    [SLIX_SCRIPT, "--jid", jid, "--password", opts.password, "--host", "127.0.0.1", "--port", String(opts.server.c2sPort), "--login-timeout", String(Math.max(1, timeoutMs / 1000 - 2))],
    { stdio: ["pipe", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", PYTHONUNBUFFERED: "1" } },
  );
  killAtExit(child);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  let exited = false;
  const exitedP = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );

  const pending = new Map<number, { resolve: (r: SlixResult) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let onlineResolve!: (jid: string) => void;
  let onlineReject!: (e: Error) => void;
  const online = new Promise<string>((res, rej) => {
    onlineResolve = res;
    onlineReject = rej;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    let msg: { event?: string; jid?: string; error?: string; seq?: number } & Partial<SlixResult>;
    try {
      msg = JSON.parse(line);
    } catch {
      stderr += `[stdout, not JSON] ${line}\n`;
      return;
    }
    if (msg.event === "online") return onlineResolve(msg.jid!);
    if (msg.event === "failed") return onlineReject(new Error(`slixmpp login ${jid} (${opts.server.kind}) failed: ${msg.error}`));
    if (typeof msg.seq === "number") {
      const p = pending.get(msg.seq);
      pending.delete(msg.seq);
      p?.resolve(msg as SlixResult);
    }
  });
  void exitedP.then(() => {
    const err = new Error(`slix_client.py exited (code ${child.exitCode ?? child.signalCode}); stderr:\n${stderr.slice(-3000)}`);
    onlineReject(err);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  });

  let timer: NodeJS.Timeout | undefined;
  let fullJid: string;
  try {
    fullJid = await Promise.race([
      online,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`slixmpp login ${jid} (${opts.server.kind}): no session after ${timeoutMs} ms; stderr:\n${stderr.slice(-3000)}`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    child.kill("SIGKILL");
    await exitedP;
    throw err;
  } finally {
    clearTimeout(timer);
  }

  const run = (action: SlixAction): Promise<SlixResult> => {
    if (exited) return Promise.reject(new Error(`slix_client.py is not running; stderr:\n${stderr.slice(-3000)}`));
    const n = ++seq;
    return new Promise((resolve, reject) => {
      pending.set(n, { resolve, reject });
      child.stdin.write(`${JSON.stringify({ ...action, seq: n })}\n`);
    });
  };
  let stopping: Promise<void> | undefined;
  return {
    jid: fullJid,
    bareJid: jid,
    run,
    async must(action) {
      const r = await run(action);
      if (!r.ok) throw new Error(`slixmpp ${action.op} failed: ${describeError(r.error)}`);
      return r;
    },
    stderr: () => stderr,
    stop() {
      stopping ??= (async () => {
        if (exited) return;
        child.stdin.end();
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exitedP;
        clearTimeout(t);
      })();
      return stopping;
    },
  };
}
