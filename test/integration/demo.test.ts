// The README's first command: `bash scripts/demo.sh` brings up Redis, Prosody and the gateway with the
// sandbox provider, and a Jabber client can text and be texted. Then Ctrl-C takes it all down again.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { until } from "../support/wait.js";
import { connectClient, xml, type TestClient } from "../support/xmpp-client.js";
import type { XmppServer } from "../support/xmpp-server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const CONTACT = "+15552223333@sms.localhost";

interface DemoReady {
  jid: string;
  password: string;
  c2sPort: number;
  httpPort: number;
  adminToken: string;
  contact: string;
  redisPort: number;
  componentPort: number;
  dir: string;
  pids: { redis: number; prosody: number; gateway: number };
}

let demo: ChildProcess | undefined;
let demoExit: Promise<number | null> | undefined;
let demoGone = false;
let output = "";
let ready: DemoReady;
let user: TestClient | undefined;

/** Resolves with "timeout" after ms without keeping the process alive. */
const timeout = (ms: number) => new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms).unref());

const tail = () => output.split("\n").slice(-40).join("\n");

/** Polls `probe` (a probe that throws has not seen it yet) until it returns a value; fails early if demo.sh exits. */
function waitFor<T>(what: string, ms: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const tolerant = async () => {
    try {
      return await probe();
    } catch {
      return undefined; // not yet
    }
  };
  return until(tolerant, { what, timeoutMs: ms, intervalMs: 100, abortIf: () => (demoGone ? "demo.sh exited" : undefined) });
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `T`: the answer's shape as the test expects it (the assertions check it). */
async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`http://127.0.0.1:${ready.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${ready.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

before(async () => {
  assert.ok(existsSync(`${ROOT}/dist/src/main.js`), "dist/src/main.js is missing: run `npm run build` before this test");
  demo = spawn("bash", ["scripts/demo.sh"], {
    cwd: ROOT,
    env: { ...process.env, DEMO_NO_INSTALL: "1", DEMO_C2S_PORT: "0", DEMO_HTTP_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
    // Same process group: a Ctrl-C of the test run reaches the script too, which then stops its children.
  });
  const proc = demo;
  demoExit = new Promise((resolve) => proc.once("exit", (code) => ((demoGone = true), resolve(code))));
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d));

  ready = await Promise.race([
    waitFor("DEMO_READY", 25_000, () => {
      const line = output.split("\n").find((l) => l.startsWith("DEMO_READY "));
      return line ? (JSON.parse(line.slice("DEMO_READY ".length)) as DemoReady) : undefined;
    }),
    demoExit.then((code) => {
      throw new Error(`demo.sh exited (${code}) before it was ready`);
    }),
  ]).catch((err: Error) => {
    throw new Error(`${err.message}\n--- demo output:\n${tail()}`);
  });

  // The demo's own Prosody, described the way connectClient reads a server (it uses kind, domain and
  // c2sPort only). Plain TCP on loopback: @xmpp/client picks SCRAM-SHA-1 (never PLAIN without TLS).
  const server = { kind: "prosody", domain: "localhost", c2sPort: ready.c2sPort } as unknown as XmppServer;
  user = await connectClient({ server, username: ready.jid.split("@")[0]!, password: ready.password, resource: "demo-test" });
});

after(async () => {
  await user?.stop();
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    // Only when a test failed before the Ctrl-C test ran: stop the script and everything it started.
    demo.kill("SIGINT");
    const stopped = await Promise.race([demoExit, timeout(20_000)]);
    if (stopped === "timeout") {
      for (const pid of [demo.pid, ...(ready ? Object.values(ready.pids) : [])]) {
        try {
          if (pid) process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  }
});

test("demo: the user is linked and the component is online", async () => {
  assert.equal(ready.jid, "demo@localhost");
  assert.equal(ready.contact, CONTACT);
  const user = await api("GET", `/api/v1/users/${ready.jid}`);
  assert.equal(user.status, 200);
  assert.deepEqual(user.json, { jid: "demo@localhost", phone: "+15550001111" });
  // The details need the admin token; anyone gets the status.
  const health = (await api<{ xmpp: { connected: boolean }; provider: string }>("GET", "/readyz")).json;
  assert.equal(health.xmpp.connected, true);
  assert.equal(health.provider, "sandbox");
  assert.deepEqual(await fetch(`http://127.0.0.1:${ready.httpPort}/readyz`).then((r) => r.json()), { status: "ready" });
});

test("demo: a chat to the contact becomes an SMS in the sandbox, with a delivery receipt", async () => {
  const body = `Hello from the demo test ${Date.now()}`;
  await user!.send(xml("message", { type: "chat", to: CONTACT, id: "demo-out-1" }, xml("body", {}, body), xml("request", { xmlns: "urn:xmpp:receipts" })));
  const sent = await waitFor("the SMS in GET /sandbox/messages", 10_000, async () => {
    const res = await api<{ messages: { direction: string; body: string; from: string; to: string }[] }>("GET", "/sandbox/messages");
    assert.equal(res.status, 200);
    return res.json.messages.find((m) => m.direction === "out" && m.body === body);
  });
  assert.equal(sent.from, "+15550001111");
  assert.equal(sent.to, "+15552223333");

  // The sandbox reports "delivered" like Twilio would: the client asked for a receipt (XEP-0184).
  const receipt = await user!.waitFor((s) => s.name === "message" && s.getChild("received", "urn:xmpp:receipts")?.attrs.id === "demo-out-1", 10_000);
  assert.equal(receipt.attrs.from, CONTACT);
  assert.equal(user!.received.find((s) => s.name === "message" && s.attrs.type === "error")?.toString(), undefined);
});

test("demo: an SMS injected into the sandbox arrives as a chat message", async () => {
  const body = `Hi from the sandbox ${Date.now()}`;
  const res = await api<{ delivered: boolean }>("POST", "/sandbox/sms", { from: "+15552223333", to: "+15550001111", body });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  assert.equal(res.json.delivered, true);
  const msg = await user!.waitFor((s) => s.name === "message" && s.getChildText("body") === body, 10_000);
  assert.equal(msg.attrs.from, CONTACT);
  assert.equal(msg.attrs.type, "chat");
  assert.match(msg.attrs.to ?? "", /^demo@localhost(\/|$)/);
});

test("demo: Ctrl-C stops Redis, Prosody and the gateway and removes the temp dir", async () => {
  await user!.stop();
  demo!.kill("SIGINT");
  const code = await Promise.race([demoExit!, timeout(20_000)]);
  assert.notEqual(code, "timeout", `demo.sh did not exit within 20 s of SIGINT:\n${tail()}`);
  assert.equal(code, 0, tail());
  for (const [name, pid] of Object.entries(ready.pids)) assert.equal(alive(pid), false, `${name} (pid ${pid}) is still running`);
  for (const [name, port] of [
    ["c2s", ready.c2sPort],
    ["component", ready.componentPort],
    ["redis", ready.redisPort],
    ["http", ready.httpPort],
  ] as const) {
    assert.equal(await portAccepts(port), false, `${name} port ${port} still accepts connections`);
  }
  assert.equal(existsSync(ready.dir), false, `${ready.dir} was not removed`);
});
