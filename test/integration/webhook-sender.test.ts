// The webhook sender against a real node:http receiver on 127.0.0.1 (allowPrivate: true for those),
// and the SSRF guard at send time (allowPrivate: false: no connection may reach the receiver).
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { lookup } from "node:dns/promises";
import { createServer as createTlsServer } from "node:tls";
import { after, before, test } from "node:test";
import { createWebhookSender } from "../../src/adapters/webhook/sender.js";
import { type Resolver } from "../../src/adapters/webhook/ssrf.js";
import type { WebhookPayload } from "../../src/core/ports.js";
import { verifySignature } from "../../src/webhooks/verify.js";

const secret = "whsec-test-123";
const payload: WebhookPayload = { id: "01HZX", from: "alice@example.com", to: "deploybot@sms.example.com", body: "deploy main ✓", timestamp: new Date().toISOString() };

interface Hit {
  path: string;
  headers: IncomingMessage["headers"];
  raw: Buffer;
  verified: boolean;
}
const hits: Hit[] = [];
let connections = 0;
let server: Server;
let port: number;
let base: string;

// Behaviour by path; every request is recorded with whether its signature verified over the raw body.
const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  "/reply": (_q, s) => s.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ reply: "deploying main" })),
  "/no-reply": (_q, s) => s.writeHead(204).end(),
  "/not-json": (_q, s) => s.writeHead(200, { "content-type": "application/json" }).end("{reply: nope"),
  "/reply-number": (_q, s) => s.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ reply: 42 })),
  "/missing": (_q, s) => s.writeHead(404, { "content-type": "text/plain" }).end("no such bot\u0007\u001b[31m here\r\n" + "x".repeat(500)),
  "/boom": (_q, s) => s.writeHead(500).end("internal"),
  "/busy": (_q, s) => s.writeHead(429, { "retry-after": "7" }).end(),
  "/down": (_q, s) => s.writeHead(503, { "retry-after": "2" }).end(),
  "/moved": (_q, s) => s.writeHead(302, { location: "/elsewhere?token=hunter2" }).end(),
  "/elsewhere": (_q, s) => s.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ reply: "followed!" })),
  "/silent": () => {
    /* never answers */
  },
  "/huge": (_q, s) => {
    s.writeHead(200, { "content-type": "application/json" });
    s.end(JSON.stringify({ reply: "x".repeat(5 * 1024 * 1024) }));
  },
  "/huge-error": (_q, s) => s.writeHead(400, { "content-type": "text/plain" }).end("bad input: " + "y".repeat(5 * 1024 * 1024)),
};

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const verified = verifySignature({
        secret,
        timestamp: String(req.headers["x-switchboard-timestamp"]),
        body: raw,
        signature: String(req.headers["x-switchboard-signature"]),
      });
      const path = new URL(req.url ?? "/", "http://x").pathname;
      hits.push({ path, headers: req.headers, raw, verified });
      (routes[path] ?? ((_q, s) => s.writeHead(404).end()))(req, res);
    });
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function reset(): void {
  hits.length = 0;
  connections = 0;
}

const open = () => createWebhookSender({ allowPrivate: true, timeoutMs: 800, maxResponseBytes: 16 * 1024 });

test("signed JSON POST: the receiver verifies the signature over the raw body; the reply comes back", async () => {
  reset();
  const sender = open();
  try {
    const r = await sender.send(`${base}/reply?token=abc`, secret, payload);
    assert.deepEqual(r, { kind: "ok", status: 200, reply: "deploying main" });
    const hit = hits[0]!;
    assert.equal(hit.verified, true);
    assert.equal(hit.headers["content-type"], "application/json");
    assert.match(String(hit.headers["x-switchboard-signature"]), /^sha256=[0-9a-f]{64}$/);
    assert.deepEqual(JSON.parse(hit.raw.toString("utf8")), payload);
    assert.equal(verifySignature({ secret: "wrong", timestamp: String(hit.headers["x-switchboard-timestamp"]), body: hit.raw, signature: String(hit.headers["x-switchboard-signature"]) }), false);

    assert.deepEqual(await sender.send(`${base}/no-reply`, secret, payload), { kind: "ok", status: 204 });
    assert.deepEqual(await sender.send(`${base}/not-json`, secret, payload), { kind: "ok", status: 200 });
    assert.deepEqual(await sender.send(`${base}/reply-number`, secret, payload), { kind: "ok", status: 200 });
    assert.ok(connections < 4, `keep-alive: ${connections} connections for four requests`);
  } finally {
    await sender.close();
  }
});

test("4xx is permanent with a clean excerpt; 5xx and 429 are retried with Retry-After", async () => {
  reset();
  const sender = open();
  try {
    const missing = await sender.send(`${base}/missing`, secret, payload);
    assert.equal(missing.kind, "permanent");
    assert.ok(missing.kind === "permanent");
    assert.equal(missing.status, 404);
    assert.match(missing.excerpt, /^no such bot \[31m here x+…$/);
    assert.ok(missing.excerpt.length <= 200);
    assert.doesNotMatch(missing.excerpt, /\p{Cc}/u);

    assert.deepEqual(await sender.send(`${base}/boom?key=SECRET`, secret, payload), { kind: "retry", status: 500, reason: `HTTP 500 from ${base}` });
    assert.deepEqual(await sender.send(`${base}/busy`, secret, payload), { kind: "retry", status: 429, reason: `HTTP 429 from ${base}`, retryAfterMs: 7000 });
    assert.deepEqual(await sender.send(`${base}/down`, secret, payload), { kind: "retry", status: 503, reason: `HTTP 503 from ${base}`, retryAfterMs: 2000 });
  } finally {
    await sender.close();
  }
});

test("a redirect is not followed: permanent, and the Location is never fetched", async () => {
  reset();
  const sender = open();
  try {
    const r = await sender.send(`${base}/moved`, secret, payload);
    assert.equal(r.kind, "permanent");
    assert.ok(r.kind === "permanent");
    assert.equal(r.status, 302);
    assert.match(r.excerpt, /redirects are not followed/);
    assert.equal(r.excerpt, `redirects are not followed (Location: ${base}/elsewhere); register the final URL`);
    assert.doesNotMatch(r.excerpt, /hunter2/, "the Location's query string is not repeated");
    assert.deepEqual(
      hits.map((h) => h.path),
      ["/moved"],
    );
  } finally {
    await sender.close();
  }
});

test("a receiver that never answers: retry after about timeoutMs", async () => {
  reset();
  const sender = open();
  try {
    const t0 = Date.now();
    const r = await sender.send(`${base}/silent`, secret, payload);
    const took = Date.now() - t0;
    assert.deepEqual(r, { kind: "retry", reason: `no answer from ${base} within 800 ms` });
    assert.ok(took >= 700 && took < 2000, `took ${took} ms`);
  } finally {
    await sender.close();
  }
});

test("oversized responses are read only up to the cap", async () => {
  reset();
  const sender = open();
  try {
    // 5 MiB of JSON: cut at 16 KiB, so it no longer parses: delivered, without a reply.
    assert.deepEqual(await sender.send(`${base}/huge`, secret, payload), { kind: "ok", status: 200 });
    const bad = await sender.send(`${base}/huge-error`, secret, payload);
    assert.ok(bad.kind === "permanent" && bad.status === 400 && bad.excerpt.startsWith("bad input: yyy") && bad.excerpt.length <= 200);
  } finally {
    await sender.close();
  }
});

test("connection refused and unresolvable hosts are retried; reasons carry no query string", async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const sender = open();
  try {
    const r = await sender.send(`http://127.0.0.1:${deadPort}/hook?token=SECRET`, secret, payload);
    assert.deepEqual(r, { kind: "retry", reason: `connection refused by http://127.0.0.1:${deadPort}` });
    const dns = await sender.send("http://no-such-host.invalid/hook?token=SECRET", secret, payload);
    assert.ok(dns.kind === "retry" && /^DNS lookup of no-such-host\.invalid failed \(E[A-Z_]+\)$/.test(dns.reason), JSON.stringify(dns));
  } finally {
    await sender.close();
  }
});

test("the caller's abort signal ends a request early (retry, not an error)", async () => {
  reset();
  const sender = createWebhookSender({ allowPrivate: true, timeoutMs: 10_000 });
  try {
    const t0 = Date.now();
    const r = await sender.send(`${base}/silent`, secret, payload, AbortSignal.timeout(200));
    assert.equal(r.kind, "retry");
    assert.ok(r.kind === "retry" && /cancelled/.test(r.reason));
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    await sender.close();
  }
});

test("private targets refused at send time: no connection reaches the receiver", async () => {
  reset();
  const sender = createWebhookSender({ allowPrivate: false, timeoutMs: 800 });
  try {
    const urls = [`${base}/reply`, `http://localhost:${port}/reply`, `http://[::ffff:127.0.0.1]:${port}/reply`];
    // A name that is not "localhost" but resolves to 127.0.0.1 (/etc/hosts): exercises the connect-time lookup.
    const host = hostname();
    const addrs = await lookup(host, { all: true }).catch(() => []);
    if (addrs.length > 0 && addrs.every((a) => a.address.startsWith("127."))) urls.push(`http://${host}:${port}/reply`);
    for (const url of urls) {
      const r = await sender.send(url, secret, payload);
      assert.ok(r.kind === "permanent" && r.status === 0 && /^not sent: .*(loopback|127\.0\.0\.1)/.test(r.excerpt), `${url}: ${JSON.stringify(r)}`);
    }
    assert.ok(urls.length >= 3);
    assert.equal(connections, 0);
    assert.equal(hits.length, 0);
  } finally {
    await sender.close();
  }
});

test("DNS rebinding: a name checked as public that resolves to 127.0.0.1 at send time is refused", async () => {
  reset();
  let calls = 0;
  // First answer public (registration passes), every later one loopback: the attack.
  const rebinding: Resolver = async () => (calls++ === 0 ? [{ address: "93.184.216.34", family: 4 }] : [{ address: "127.0.0.1", family: 4 }]);
  const sender = createWebhookSender({ allowPrivate: false, timeoutMs: 800, resolve: rebinding });
  try {
    await sender.checkUrl(`http://rebind.example:${port}/reply`);
    const r = await sender.send(`http://rebind.example:${port}/reply`, secret, payload);
    assert.deepEqual(r, {
      kind: "permanent",
      status: 0,
      excerpt: "not sent: rebind.example resolves to 127.0.0.1 (loopback); webhook targets must be public (WEBHOOK_ALLOW_PRIVATE=true allows private ones)",
    });
    assert.equal(calls, 2, "resolved again for the connection");
    assert.equal(connections, 0);
  } finally {
    await sender.close();
  }
});

test("the connection goes to the resolved address while Host and TLS SNI keep the URL's name", async () => {
  reset();
  const resolve: Resolver = async (name) => (name === "hook.test" ? [{ address: "127.0.0.1", family: 4 }] : Promise.reject(Object.assign(new Error("nx"), { code: "ENOTFOUND" })));
  const sender = createWebhookSender({ allowPrivate: true, timeoutMs: 800, resolve });
  // A TLS listener without a certificate still reads the ClientHello's server name, then fails the handshake.
  const sni: string[] = [];
  const tls = createTlsServer({ SNICallback: (name, cb) => (sni.push(name), cb(new Error("no certificate here"))) });
  tls.on("tlsClientError", () => {});
  await new Promise<void>((r) => tls.listen(0, "127.0.0.1", r));
  try {
    assert.deepEqual(await sender.send(`http://hook.test:${port}/reply`, secret, payload), { kind: "ok", status: 200, reply: "deploying main" });
    assert.equal(hits[0]?.headers.host, `hook.test:${port}`);
    assert.equal(hits[0]?.verified, true);
    const tlsPort = (tls.address() as AddressInfo).port;
    const r = await sender.send(`https://hook.test:${tlsPort}/reply`, secret, payload);
    assert.equal(r.kind, "retry");
    assert.deepEqual(sni, ["hook.test"]);
  } finally {
    await sender.close();
    await new Promise((r) => tls.close(r));
  }
});
