// The web phone (issue 7, item 5): GET /sandbox in a real browser (Debian's headless Chromium driven
// by playwright-core) against the real gateway, Redis and XMPP server. A text sent from the page
// reaches the linked XMPP user; the user's reply appears in the page's thread live, without a reload.
// A screenshot is kept in test-artifacts/web-phone.png.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { ADMIN_TOKEN, startGateway, type TestGateway } from "../support/gateway.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { connectClient, xml, type StanzaElement, type TestClient } from "../support/xmpp-client.js";
import { startXmppServer, type XmppServer } from "../support/xmpp-server.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const DOMAIN = "sms.localhost";
const ALICE_NUMBER = "+15550001111";
const PHONE = "+15552223333";
const CONTACT = `${PHONE}@${DOMAIN}`;

let redis: RedisServer;
let server: XmppServer;
let gw: TestGateway;
let alice: TestClient;
let browser: Browser | undefined;
let page: Page;
let base: string;
const pageErrors: string[] = [];

before(async () => {
  // Never skipped: a machine without the browser fails here and says how to get it.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: the web phone test needs Debian's Chromium (apt-get install chromium; scripts/test.sh installs it when run as root)`);
  [redis, server] = await Promise.all([startRedis(), startXmppServer({ componentDomain: DOMAIN, componentSecret: "component-secret", users: [{ username: "alice", password: "alice-pw" }] })]);
  gw = await startGateway(
    { SMS_PROVIDER: "sandbox", HTTP_HOST: "127.0.0.1", XMPP_SERVICE: server.componentService, XMPP_DOMAIN: DOMAIN, XMPP_SECRET: "component-secret", REDIS_URL: redis.url },
    { listen: true },
  );
  base = gw.gateway.url().replace(/\/$/, "");
  await gw.waitOnline();
  assert.equal((await gw.admin("PUT", `/api/v1/users/${server.userJid("alice")}`, { phone: ALICE_NUMBER })).status, 201);
  alice = await connectClient({ server, username: "alice", password: "alice-pw", resource: "phone" });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  page.on("pageerror", (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && /Content Security Policy|Uncaught/i.test(msg.text())) pageErrors.push(`console: ${msg.text()}`);
  });
});

after(async () => {
  // The gateway first, while the page still holds its event stream open: stop must not wait on it.
  await gw?.stop();
  await browser?.close();
  await alice?.stop();
  await Promise.allSettled([server?.stop(), redis?.stop()]);
});

test("the page loads without the token; its API and event stream need it", async () => {
  const res = await fetch(`${base}/sandbox`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'sha256-/);
  assert.match(await res.text(), /Switchboard web phone/);
  assert.equal((await fetch(`${base}/sandbox/events`)).status, 401);
  assert.equal((await fetch(`${base}/sandbox/events?token=${ADMIN_TOKEN}`)).status, 401, "no token in URLs");

  const ctrl = new AbortController();
  const stream = await fetch(`${base}/sandbox/events`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: ctrl.signal });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
  const reader = stream.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.match(first, /event: ready/);
  ctrl.abort();
});

test("a wrong token is refused in the page", async () => {
  await page.goto(`${base}/sandbox`);
  await page.fill("#token", "not-the-admin-token");
  await page.click("#login-form button");
  await page.waitForSelector("#login-error:has-text('refused')", { timeout: 5000 });
  assert.equal(await page.isVisible("#app"), false);
});

test("text the linked user from the page; the reply appears live in the thread", async () => {
  await page.goto(`${base}/sandbox`);
  await page.fill("#token", ADMIN_TOKEN);
  await page.click("#login-form button");
  await page.waitForSelector("#live.on", { timeout: 10_000 });
  // set once: a reload would lose it
  await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
  assert.equal(await page.evaluate(() => sessionStorage.getItem("switchboard.adminToken")), ADMIN_TOKEN, "kept for the tab");
  // the linked number is offered in the To field's list
  assert.equal(await page.getAttribute(`#linked option[value='${ALICE_NUMBER}']`, "label"), server.userJid("alice"));

  await page.fill("#from", PHONE);
  await page.fill("#to", ALICE_NUMBER);
  await page.fill("#body", "Hello from the web phone");
  await page.click("#send");

  const isText = (body: string) => (el: StanzaElement) => el.name === "message" && el.getChildText("body") === body;
  const got = await alice.waitFor(isText("Hello from the web phone"), 10_000);
  assert.equal(got.attrs.from?.split("/")[0], CONTACT);
  await page.waitForSelector("#send-status:has-text('Sent to')", { timeout: 5000 });
  // the sent text is in the thread, as the phone's own bubble
  await page.waitForSelector(`#messages[data-thread='${ALICE_NUMBER}|${PHONE}'] .msg.in:has-text('Hello from the web phone')`, { timeout: 5000 });

  // alice answers whatever she got, to whoever sent it
  await alice.send(xml("message", { to: CONTACT, type: "chat", id: "reply-1" }, xml("body", {}, `Got it: ${got.getChildText("body")}`)));
  const reply = page.locator("#messages .msg.out", { hasText: "Got it: Hello from the web phone" });
  await reply.waitFor({ timeout: 10_000 });
  // status changes arrive live too: the sandbox plays queued → sent → delivered
  await page.waitForSelector("#messages .msg.out[data-status='delivered']", { timeout: 10_000 });
  assert.equal(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload), true, "the page was not reloaded");
  assert.match((await page.textContent("#thread-title")) ?? "", new RegExp(`\\${PHONE}.*\\${ALICE_NUMBER}.*alice@`));

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}web-phone.png`, fullPage: true });
  assert.deepEqual(pageErrors, [], "no script errors or CSP violations in the page");
});
