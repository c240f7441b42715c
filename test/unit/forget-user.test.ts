// core/flows/forget-user.ts: what unlinking or unregistering deletes, and which queued work it gives up.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMemoryAccountStore } from "../../src/adapters/memory/account-store.js";
import { createMemoryIntroductionStore } from "../../src/adapters/memory/introduction-store.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMediaTokens } from "../../src/adapters/memory/media-tokens.js";
import { createMemoryDelivery } from "../../src/adapters/memory/delivery.js";
import { createForgetUser, RECIPIENT_UNLINKED, SENDER_UNLINKED, unlinkedWork } from "../../src/core/flows/forget-user.js";
import type { OutboundJob, XmppDelivery } from "../../src/core/model/message.js";

const JID = "alice@example.com";
const PHONE = "+15550001111";
const chat = (to: string): XmppDelivery => ({ kind: "chat", id: "m", from: "+15552223333@sms.example.com", to, body: "hi", mediaUrls: [], acceptedAt: 0 });

test("the work given up: deliveries to the user (any resource), their texts and webhook messages", () => {
  const select = unlinkedWork(JID, PHONE);
  assert.equal(select("to-xmpp", chat(JID)), RECIPIENT_UNLINKED);
  assert.equal(select("to-xmpp", { kind: "error", id: "e", from: "c@sms", to: `${JID}/phone`, replyTo: "s", condition: "x", type: "cancel", text: "t" }), RECIPIENT_UNLINKED);
  assert.equal(select("to-xmpp", chat("bob@example.com")), undefined);
  assert.equal(select("to-xmpp", chat("alice@example.com.evil")), undefined);
  const sms = (from: string): OutboundJob => ({ id: "j", from, to: "+15552223333", body: "hi", mediaUrls: [] });
  assert.equal(select("outbound", sms(PHONE)), SENDER_UNLINKED);
  assert.equal(select("outbound", sms("+15550009999")), undefined);
  const hook = (from: string): OutboundJob => ({ channel: "webhook", id: "w", from, to: "deploybot", body: "hi", mediaUrls: [], acceptedAt: 0 });
  assert.equal(select("outbound", hook(JID)), SENDER_UNLINKED);
  assert.equal(select("outbound", hook("bob@example.com")), undefined);
  // Without a number (only credentials were left), no SMS job is theirs.
  assert.equal(unlinkedWork(JID, undefined)("outbound", sms(PHONE)), undefined);
});

/** `target` with each method call noted in `calls` as prefix + name, in the order made. */
function recorded<T extends object>(prefix: string, target: T, calls: string[]): T {
  return new Proxy(target, {
    get(t, key, receiver) {
      const v: unknown = Reflect.get(t, key, receiver);
      return typeof v === "function" ? (...args: unknown[]) => (calls.push(`${prefix}${String(key)}`), (v as (...a: unknown[]) => unknown).apply(t, args)) : v;
    },
  });
}

test("forgetting: link first, then credentials, queued work, introductions and media", async () => {
  const calls: string[] = [];
  const links = createMemoryLinkStore({ [JID]: PHONE });
  const accounts = createMemoryAccountStore();
  await accounts.put(JID, PHONE, { accountSid: "AC1", authToken: "t" });
  const delivery = createMemoryDelivery();
  await delivery.enqueueToXmpp(chat(JID));
  await delivery.enqueueToXmpp(chat("bob@example.com"));
  await delivery.enqueueOutbound({ id: "j", from: PHONE, to: "+15552223333", body: "hi", mediaUrls: [] });
  const introductions = createMemoryIntroductionStore();
  await introductions.introduce(JID, "+15552223333");
  const tokens = createMemoryMediaTokens();
  const owned = [await tokens.reserve("MM1:0", 60, JID), await tokens.reserve("MM1:1", 60, JID), await tokens.reserve("MM1:2", 60, JID)];
  const files = new Set(owned.slice(0, 2)); // the third file is gone already
  const forget = createForgetUser({
    links: recorded("", links, calls),
    accounts: recorded("accounts.", accounts, calls),
    delivery: recorded("", delivery, calls),
    introductions: recorded("introductions.", introductions, calls),
    media: { index: recorded("media.", tokens, calls), files: { remove: async (t) => files.delete(t) } },
    log: { info: () => undefined },
  });
  const res = await forget(JID);
  assert.deepEqual(calls, ["phoneOf", "unlink", "deadLetterWhere", "accounts.remove", "deadLetterWhere", "introductions.forget", "media.takeOwned"]);
  assert.deepEqual(res, { removed: true, hadCredentials: true, deadLettered: 2, media: 2, phone: PHONE });
  assert.equal(files.size, 0);
  assert.deepEqual(
    delivery.toXmpp().map((i) => i.to),
    ["bob@example.com"],
    "only their work was given up",
  );
  assert.deepEqual(delivery.outbound(), []);
  assert.deepEqual((await delivery.deadLetters(10)).map((d) => d.reason).sort(), [RECIPIENT_UNLINKED, SENDER_UNLINKED]);
  assert.equal(await links.phoneOf(JID), undefined);
  assert.equal(await accounts.credentials("AC1"), undefined);
  assert.equal(await introductions.introduce(JID, "+15552223333"), true, "introductions forgotten");
  assert.deepEqual(await tokens.takeOwned(JID), []);
});

test("nothing to forget: removed is false", async () => {
  const forget = createForgetUser({ links: createMemoryLinkStore(), log: { info: () => undefined } });
  assert.deepEqual(await forget(JID), { removed: false, hadCredentials: false, deadLettered: 0, media: 0 });
});
