// The message-in flow (core/flows/webhook-in.ts) on the in-memory adapters: the token, every refusal and its
// order, what is queued toward XMPP, the overload answer and Idempotency-Key. Then the route's mapping
// of each outcome to HTTP (http/webhook-messages-route.ts through http/problem.ts), still without Redis.
import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createMemoryUsageCounter } from "../../src/adapters/memory/usage-counter.js";
import { createMemoryWebhookStore } from "../../src/adapters/memory/webhook-store.js";
import { createAccessPolicy } from "../../src/core/policy/access.js";
import { messageInKey } from "../../src/core/model/message.js";
import { createWebhookIn, type WebhookInDeps, type WebhookInMessage } from "../../src/core/flows/webhook-in.js";
import { GatewayError } from "../../src/errors.js";
import { installProblemHandlers } from "../../src/http/problem.js";
import { webhookMessagesRoute } from "../../src/http/webhook-messages-route.js";

const DOMAIN = "sms.example.com";
const ALICE = "alice@example.com";

async function setup(o: Partial<WebhookInDeps> & { allow?: string[]; perMinute?: number } = {}) {
  const webhooks = createMemoryWebhookStore();
  const { token } = await webhooks.put("deploybot", { url: "https://bot.example/in", allow: o.allow ?? ["*@example.com"] });
  const delivery = createMemoryDelivery();
  let clock = 1_700_000_000_000;
  const events = { rateLimited: 0, accepted: [] as boolean[] };
  const flow = createWebhookIn({
    domain: DOMAIN,
    webhooks,
    delivery,
    maxBacklog: 100,
    access: createAccessPolicy(["example.com"]),
    rate: createMemoryUsageCounter({ limit: o.perMinute ?? 600, windowS: 60, now: () => clock }),
    events: { rateLimited: () => void events.rateLimited++, accepted: (fresh) => void events.accepted.push(fresh) },
    now: () => clock,
    ...o,
  });
  return { flow, webhooks, delivery, token: token!, events, tick: (ms: number) => void (clock += ms) };
}

const msg = (extra: Partial<WebhookInMessage> = {}): WebhookInMessage => ({ name: "deploybot", to: ALICE, text: "build 42 passed", media: [], ...extra });
const refusedWith =
  (code: string, extra: (e: GatewayError) => boolean = () => true) =>
  (e: unknown) =>
    e instanceof GatewayError && e.code === code && extra(e);

test("the token: the target's current one only; a malformed or unknown name, an empty or rotated token fail", async () => {
  const t = await setup();
  assert.equal(await t.flow.authenticate("deploybot", t.token), true);
  assert.equal(await t.flow.authenticate("deploybot", ""), false);
  assert.equal(await t.flow.authenticate("deploybot", "sbt_wrong"), false);
  assert.equal(await t.flow.authenticate("pager", t.token), false);
  assert.equal(await t.flow.authenticate("Deploy Bot!", t.token), false);
  await t.webhooks.rotateToken("deploybot");
  assert.equal(await t.flow.authenticate("deploybot", t.token), false);
});

test("queued: a chat from name@domain to the recipient, media in the body and as OOB, type and subject kept", async () => {
  const t = await setup();
  const res = await t.flow.accept(msg({ media: ["https://ci.example/log.txt"], type: "headline", subject: "CI" }));
  assert.equal(res.outcome, "queued");
  assert.match(res.id, /^[0-9A-HJKMNP-TV-Z]{26}$/, "one of the gateway's ids (a ULID)");
  assert.deepEqual(t.delivery.toXmpp(), [
    {
      kind: "chat",
      id: res.id,
      from: `deploybot@${DOMAIN}`,
      to: ALICE,
      body: "build 42 passed\nhttps://ci.example/log.txt",
      mediaUrls: ["https://ci.example/log.txt"],
      acceptedAt: 1_700_000_000_000,
      type: "headline",
      subject: "CI",
    },
  ]);
  assert.deepEqual(t.events.accepted, [true]);
  await t.flow.accept(msg({ text: "", media: ["https://ci.example/a.png"] }));
  const second = t.delivery.toXmpp()[1];
  assert.equal(second?.kind === "chat" ? second.body : undefined, "https://ci.example/a.png", "media only: the body is the URL");
});

test("a target deleted after its token was checked: 401, nothing queued", async () => {
  const t = await setup();
  await t.webhooks.delete("deploybot");
  await assert.rejects(
    t.flow.accept(msg()),
    refusedWith("unauthorized", (e) => e.httpStatus === 401),
  );
  assert.deepEqual(t.delivery.toXmpp(), []);
});

test("a recipient outside ALLOWED_DOMAINS: 403 on body.to, before the rate is charged", async () => {
  const t = await setup({ perMinute: 1, allow: ["*@example.com", "*@elsewhere.org"] });
  await assert.rejects(
    t.flow.accept(msg({ to: "mallory@elsewhere.org" })),
    refusedWith("forbidden", (e) => e.field === "body.to" && /not a user of a domain this gateway serves \(example\.com\)/.test(e.userText)),
  );
  assert.equal((await t.flow.accept(msg())).outcome, "queued", "the refused one cost nothing");
  assert.equal(t.delivery.toXmpp().length, 1);
});

test("the token's rate: past it 429 with the window's time left, counted per token, nothing queued", async () => {
  const t = await setup({ perMinute: 2 });
  await t.flow.accept(msg());
  t.tick(10_000);
  await t.flow.accept(msg());
  await assert.rejects(
    t.flow.accept(msg()),
    refusedWith("rate_limited", (e) => e.httpStatus === 429 && e.retryAfterMs === 50_000 && /at most 2 messages a minute/.test(e.userText)),
  );
  assert.equal(t.events.rateLimited, 1);
  assert.equal(t.delivery.toXmpp().length, 2);
  t.tick(50_000);
  assert.equal((await t.flow.accept(msg())).outcome, "queued", "a new minute");
  const unlimited = await setup({ perMinute: 0 });
  for (let i = 0; i < 5; i++) await unlimited.flow.accept(msg());
  assert.equal(unlimited.delivery.toXmpp().length, 5, "0 = no limit");
});

test("the target's allow list: an exact JID or *@domain; anyone else 403 on body.to", async () => {
  const t = await setup({ allow: ["bob@example.com"] });
  await assert.rejects(
    t.flow.accept(msg()),
    refusedWith("forbidden", (e) => e.field === "body.to" && /deploybot may not message alice@example.com: it is not in the webhook's allow list/.test(e.userText)),
  );
  assert.equal((await t.flow.accept(msg({ to: "bob@example.com" }))).outcome, "queued");
  assert.deepEqual(
    t.delivery.toXmpp().map((i) => i.to),
    ["bob@example.com"],
  );
});

test("overload: past WEBHOOK_IN_MAX_BACKLOG waiting in the partition, 503 with a 30 s Retry-After", async () => {
  const t = await setup({ maxBacklog: 1 });
  await t.flow.accept(msg());
  await t.flow.accept(msg());
  await new Promise((r) => setTimeout(r, 120)); // the engine answers the backlog from memory for 100 ms
  await assert.rejects(
    t.flow.accept(msg()),
    refusedWith("resource_constraint", (e) => e.httpStatus === 503 && e.retryAfterMs === 30_000 && /waiting for delivery; retry later/.test(e.userText)),
  );
  assert.equal(t.delivery.toXmpp().length, 2);
});

test("Idempotency-Key: a repeat answers the first id and queues nothing; keys are per target; none: every post is new", async () => {
  const t = await setup();
  const first = await t.flow.accept(msg({ idempotencyKey: "deploy-42" }));
  const again = await t.flow.accept(msg({ idempotencyKey: "deploy-42", text: "changed" }));
  assert.deepEqual(again, { outcome: "repeat", id: first.id });
  assert.deepEqual(t.events.accepted, [true, false]);
  await t.webhooks.put("pager", { url: "https://pager.example/", allow: ["*@example.com"] });
  assert.equal((await t.flow.accept(msg({ name: "pager", idempotencyKey: "deploy-42" }))).outcome, "queued", "another target's key");
  await t.flow.accept(msg());
  await t.flow.accept(msg());
  assert.equal(t.delivery.toXmpp().length, 4);
});

test("Idempotency-Key: a marker another source left under the key (not one of our ids) is replaced, not honoured", async () => {
  const t = await setup();
  await t.delivery.queues.add("to-xmpp", 0, "{}", { key: messageInKey("deploybot", "k1"), itemId: "SMforged", ttlS: 60 });
  assert.equal((await t.flow.accept(msg({ idempotencyKey: "k1" }))).outcome, "queued");
  assert.equal((await t.flow.accept(msg({ idempotencyKey: "k1" }))).outcome, "repeat");
});

// The HTTP face: each outcome mapped once, through problem.ts.
async function http(t: Awaited<ReturnType<typeof setup>>) {
  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  webhookMessagesRoute(app, { webhookIn: t.flow });
  await app.ready();
  return (body: object, token = t.token, headers: Record<string, string> = {}) =>
    app.inject({ method: "POST", url: "/api/v1/webhooks/deploybot/messages", headers: { authorization: `Bearer ${token}`, ...headers }, payload: body });
}

test("HTTP: 202 with the id; 401 with WWW-Authenticate before the body is read; refusals as problem+json with Retry-After", async () => {
  const t = await setup({ perMinute: 1 });
  const post = await http(t);
  const ok = await post({ to: ALICE, body: "hi" }, t.token, { "idempotency-key": "a" });
  assert.equal(ok.statusCode, 202);
  assert.deepEqual(ok.json(), { id: t.delivery.toXmpp()[0]?.id });
  const stranger = await post({ nonsense: true }, "sbt_wrong");
  assert.equal(stranger.statusCode, 401);
  assert.equal(stranger.headers["www-authenticate"], 'Bearer realm="switchboard-webhook"');
  assert.match(String(stranger.headers["content-type"]), /^application\/problem\+json/);
  const outside = await post({ to: "eve@elsewhere.org", body: "hi" });
  assert.deepEqual([outside.statusCode, outside.json().field, outside.json().title], [403, "body.to", "Forbidden"]);
  const repeat = await post({ to: ALICE, body: "hi" }, t.token, { "idempotency-key": "a" });
  assert.equal(repeat.statusCode, 429, "the rate counts repeats too");
  assert.equal(repeat.headers["retry-after"], "60");
  assert.deepEqual(Object.keys(repeat.json()), ["type", "title", "status", "detail"]);
  const bad = await post({ to: "not a jid", body: "hi" });
  assert.deepEqual([bad.statusCode, bad.json().field], [400, "body.to"]);
});

test("HTTP: overload is 503 with Retry-After: 30", async () => {
  const t = await setup({ maxBacklog: 0 });
  const post = await http(t);
  assert.equal((await post({ to: ALICE, body: "one" })).statusCode, 202);
  await new Promise((r) => setTimeout(r, 120));
  const busy = await post({ to: ALICE, body: "two" });
  assert.deepEqual([busy.statusCode, busy.headers["retry-after"], busy.json().title], [503, "30", "Service Unavailable"]);
});
