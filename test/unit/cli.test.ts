// The admin CLI's pure parts: where it connects and with which token, .env precedence, the doctor's
// report format and explanations, and the raw XEP-0114 handshake against scripted servers (stream
// errors split across packets, a client port, success).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { adminToken, gatewayUrl, loadEnv, type CliIo } from "../../src/cli/context.js";
import { CliError } from "../../src/cli/errors.js";
import { checkConfig } from "../../src/cli/doctor/config-check.js";
import { gatewayCheck } from "../../src/cli/doctor/gateway-check.js";
import { xmppFromReadyz } from "../../src/cli/doctor/xmpp-check.js";
import { formatChecks } from "../../src/cli/doctor/index.js";
import { componentHandshake } from "../../src/cli/doctor/handshake.js";
import { explainXmppError } from "../../src/cli/doctor/xmpp-check.js";

const io = (env: Record<string, string>, cwd = tmpdir()): CliIo => ({ env, cwd, stdout: () => undefined, stderr: () => undefined });

test("gateway URL: --url, SWITCHBOARD_URL, the gateway's HTTP_HOST/HTTP_PORT, then 127.0.0.1:8080", () => {
  assert.equal(gatewayUrl({ url: "https://gw.example.com/" }, { SWITCHBOARD_URL: "http://other:1" }), "https://gw.example.com");
  assert.equal(gatewayUrl({}, { SWITCHBOARD_URL: "http://other:1", HTTP_PORT: "9000" }), "http://other:1");
  assert.equal(gatewayUrl({}, { HTTP_PORT: "9000" }), "http://127.0.0.1:9000");
  assert.equal(gatewayUrl({}, { HTTP_HOST: "0.0.0.0", HTTP_PORT: "9000" }), "http://127.0.0.1:9000");
  assert.equal(gatewayUrl({}, { HTTP_HOST: "::1", HTTP_PORT: "9000" }), "http://[::1]:9000");
  assert.equal(gatewayUrl({}, { HTTP_PORT: "0" }), "http://127.0.0.1:8080");
  assert.equal(gatewayUrl({}, {}), "http://127.0.0.1:8080");
  assert.throws(
    () => gatewayUrl({ url: "ftp://x" }, {}),
    (e: unknown) => e instanceof CliError && e.exitCode === 2,
  );
  assert.throws(
    () => gatewayUrl({ url: "nope" }, {}),
    (e: unknown) => e instanceof CliError && e.exitCode === 2 && /--url/.test(e.message),
  );
});

test("admin token: SWITCHBOARD_ADMIN_TOKEN, else ADMIN_TOKEN; empty counts as unset", () => {
  assert.equal(adminToken({ SWITCHBOARD_ADMIN_TOKEN: "a", ADMIN_TOKEN: "b" }), "a");
  assert.equal(adminToken({ SWITCHBOARD_ADMIN_TOKEN: "", ADMIN_TOKEN: "b" }), "b");
  assert.equal(adminToken({}), undefined);
});

test(".env is read from the working directory, the environment wins; a missing --env-file is a usage error", () => {
  const dir = mkdtempSync(join(tmpdir(), "sb-cli-unit-"));
  try {
    writeFileSync(join(dir, ".env"), "ADMIN_TOKEN=from-file\nXMPP_DOMAIN=sms.example.com\n");
    const { env, envFile } = loadEnv(io({ ADMIN_TOKEN: "from-env" }, dir), undefined);
    assert.equal(env.ADMIN_TOKEN, "from-env");
    assert.equal(env.XMPP_DOMAIN, "sms.example.com");
    assert.equal(envFile, join(dir, ".env"));
    assert.deepEqual(loadEnv(io({ A: "1" }, tmpdir()), undefined).env.A, "1");
    assert.throws(
      () => loadEnv(io({}, dir), "missing.env"),
      (e: unknown) => e instanceof CliError && e.exitCode === 2,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("configuration check: names the bad variables; no gateway variables at all is a skip", () => {
  const bad = checkConfig({ XMPP_DOMAIN: "sms.example.com", ADMIN_TOKEN: "short" }, undefined);
  assert.equal(bad.check.ok, false);
  assert.match(bad.check.fix!, /^set XMPP_SECRET, ADMIN_TOKEN, SMS_PROVIDER in the environment or in \.env/);
  assert.match(bad.check.detail, /SMS_PROVIDER: no SMS provider is configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN .* or SMS_PROVIDER=sandbox/);
  const none = checkConfig({ ADMIN_TOKEN: "x".repeat(20), HTTP_PORT: "8080" }, undefined);
  assert.equal(none.absent, true);
  assert.equal(none.check.skipped, true);
  const good = checkConfig({ XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "x".repeat(20), REDIS_URL: "redis://:pw@127.0.0.1:6379", SMS_PROVIDER: "sandbox" }, "/srv/.env");
  assert.equal(good.check.ok, true);
  assert.match(good.check.detail, /^valid \(from \/srv\/\.env and the environment\)/);
  assert.match(good.check.detail, /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:6379/, "no password in the report");
  // Which provider runs, and why.
  assert.match(good.check.detail, /SMS_PROVIDER=sandbox \(no SMS leaves the gateway\)/);
  const exposed = checkConfig(
    { XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "x".repeat(20), SMS_PROVIDER: "sandbox", HTTP_HOST: "0.0.0.0", SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: "true" },
    undefined,
  );
  assert.match(exposed.check.detail, /SMS_PROVIDER=sandbox \(no SMS leaves the gateway, listening on 0\.0\.0\.0 beyond this machine because SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true\)/);
  const refused = checkConfig({ XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "x".repeat(20), SMS_PROVIDER: "sandbox", HTTP_HOST: "0.0.0.0" }, undefined);
  assert.equal(refused.check.ok, false);
  assert.match(refused.check.fix!, /^set HTTP_HOST in the environment/);
  const twilio = {
    XMPP_DOMAIN: "sms.example.com",
    XMPP_SECRET: "s",
    ADMIN_TOKEN: "x".repeat(20),
    TWILIO_ACCOUNT_SID: `AC${"1".repeat(32)}`,
    TWILIO_AUTH_TOKEN: "t",
    PUBLIC_URL: "https://sms.example.com",
  };
  assert.match(checkConfig(twilio, undefined).check.detail, /SMS_PROVIDER=twilio \(implied by TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN\)/);
  assert.match(checkConfig({ ...twilio, SMS_PROVIDER: "twilio" }, undefined).check.detail, /SMS_PROVIDER=twilio, /);
});

test("the report: ok / FAIL / skip lines, the fix under a failure, a summary", () => {
  const lines = formatChecks([
    { name: "redis", ok: true, detail: "fine" },
    { name: "number +15550001111", ok: false, detail: "points elsewhere", fix: "run doctor --fix" },
    { name: "twilio", ok: true, skipped: true, detail: "sandbox" },
  ]);
  assert.deepEqual(lines, [
    "ok    redis                fine",
    "FAIL  number +15550001111  points elsewhere",
    "                           fix: run doctor --fix",
    "skip  twilio               sandbox",
    "",
    "1 check failed",
  ]);
});

test("what the gateway's /readyz lastError means", () => {
  assert.match(explainXmppError("StreamError: not-authorized", "sms.example.com", undefined).fix, /^XMPP_SECRET does not match/);
  assert.match(explainXmppError("StreamError: host-unknown (sms.example.com does not match)", "sms.example.com", undefined).fix, /^XMPP_DOMAIN must be/);
  assert.match(explainXmppError("conflict: another component instance holds the domain", "sms.example.com", undefined).detail, /already connected/);
  assert.match(explainXmppError("Error: connect ECONNREFUSED 127.0.0.1:5347", undefined, "xmpp://127.0.0.1:5347").detail, /nothing listens at xmpp:\/\/127\.0\.0\.1:5347/);
  assert.match(explainXmppError("handshake not completed within 15000 ms", undefined, undefined).fix, /host and port/);
});

/** A scripted XEP-0114 server on a free port: `onData` sees what the client wrote so far. */
async function scriptedServer(onData: (socket: Socket, received: string) => void): Promise<{ service: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    let received = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      received += d;
      onData(s, received);
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as { port: number };
  return {
    service: `xmpp://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

const HEADER = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='abc123' from='sms.example.com'>";

test("handshake: sha1(streamId + secret) accepted, then the stream is closed", async () => {
  let closedByClient = false;
  const srv = await scriptedServer((s, got) => {
    if (got.endsWith("to='sms.example.com'>")) {
      // the stream header in two writes
      s.write(HEADER.slice(0, 40));
      setTimeout(() => s.write(HEADER.slice(40)), 20);
    }
    const m = /<handshake>([0-9a-f]+)<\/handshake>$/.exec(got);
    if (m)
      s.write(
        m[1] ===
          createHash("sha1")
            .update("abc123" + "s3cret")
            .digest("hex")
          ? "<handshake/>"
          : "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
      );
    if (got.endsWith("</stream:stream>")) closedByClient = true;
  });
  try {
    assert.deepEqual(await componentHandshake({ service: srv.service, domain: "sms.example.com", secret: "s3cret" }), { ok: true, streamId: "abc123" });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closedByClient, true);
    const refused = await componentHandshake({ service: srv.service, domain: "sms.example.com", secret: "wrong" });
    assert.deepEqual(refused, { ok: false, kind: "stream-error", condition: "not-authorized" });
  } finally {
    await srv.close();
  }
});

test("handshake: errors at stream open, a client port, a silent port, nothing listening", async () => {
  const hostUnknown = await scriptedServer((s) => {
    s.end(
      "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='' version='1.0'><stream:error><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>nope</text><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    );
  });
  const client = await scriptedServer((s) => {
    s.end(
      "<?xml version='1.0'?><stream:stream id='1' xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' from='sms.example.com'><stream:error><invalid-namespace xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    );
  });
  const silent = await scriptedServer(() => undefined);
  try {
    assert.deepEqual(await componentHandshake({ service: hostUnknown.service, domain: "x", secret: "s" }), { ok: false, kind: "stream-error", condition: "host-unknown", text: "nope" });
    const c = await componentHandshake({ service: client.service, domain: "x", secret: "s" });
    assert.equal(c.ok, false);
    assert.match(!c.ok && c.kind === "protocol" ? c.message : "", /jabber:client stream: XMPP_SERVICE points at a client port/);
    const quiet = await componentHandshake({ service: silent.service, domain: "x", secret: "s", timeoutMs: 300 });
    assert.equal(!quiet.ok && quiet.kind, "protocol");
  } finally {
    await Promise.all([hostUnknown.close(), client.close(), silent.close()]);
  }
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
  const refused = await componentHandshake({ service: `xmpp://127.0.0.1:${port}`, domain: "x", secret: "s" });
  assert.equal(!refused.ok && refused.kind === "connect" && refused.code, "ECONNREFUSED");
});

test("doctor against one of several instances: a standby's link check names the holder, the gateway line shows the leases", () => {
  const cluster = { instance: "gw-1", liveInstances: ["gw-0", "gw-1"], xmppLink: { heldHere: false, holder: "gw-0", token: 12 }, outboundPartitions: [0, 2, 5], leasesLost: 0 };
  const readyz = { status: "ready", redis: "ok", provider: "twilio", xmpp: { connected: false, status: "offline", reconnects: 0 }, cluster };
  const probe = { state: "running" as const, readyz, tokenSent: true };
  const link = xmppFromReadyz("http://gw-1:8080", probe, undefined);
  assert.equal(link.ok, true);
  assert.match(link.detail, /^the gateway at http:\/\/gw-1:8080 is a standby: instance gw-0 holds the XMPP link \(fence 12\)/);
  assert.match(gatewayCheck("http://gw-1:8080", probe, true).detail, /instance gw-1 of 2 live \(gw-0, gw-1\), standby: gw-0 holds the XMPP link \(fence 12\), works outbound partitions 0,2,5/);
  // Nobody holds the link: that is a failure to look into, with what to check.
  const orphan = xmppFromReadyz("http://gw-1:8080", { ...probe, readyz: { ...readyz, cluster: { ...cluster, xmppLink: { heldHere: false } } } }, undefined);
  assert.equal(orphan.ok, false);
  assert.match(orphan.fix ?? "", /LEASE_TTL_MS.*Redis/);
  // The holder itself: connected, as before.
  const holder = xmppFromReadyz(
    "http://gw-0:8080",
    { ...probe, readyz: { ...readyz, xmpp: { connected: true, status: "online", reconnects: 0 }, cluster: { ...cluster, xmppLink: { heldHere: true, token: 12 } } } },
    undefined,
  );
  assert.equal(holder.ok, true);
});
