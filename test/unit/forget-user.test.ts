// core/forget-user.ts: what unlinking or unregistering deletes, and which queued work it gives up.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createForgetUser, RECIPIENT_UNLINKED, SENDER_UNLINKED, unlinkedWork } from "../../src/core/forget-user.js";
import type { OutboundJob, XmppDelivery } from "../../src/core/message.js";
import type { DeadLetter } from "../../src/core/ports.js";

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

test("forgetting: link first, then credentials, queued work, introductions and media", async () => {
  const calls: string[] = [];
  const queue: { queue: DeadLetter["queue"]; item: XmppDelivery | OutboundJob }[] = [
    { queue: "to-xmpp", item: chat(JID) },
    { queue: "to-xmpp", item: chat("bob@example.com") },
    { queue: "outbound", item: { id: "j", from: PHONE, to: "+15552223333", body: "hi", mediaUrls: [] } },
  ];
  const files = new Set(["t1", "t2"]);
  const forget = createForgetUser({
    links: {
      phoneOf: async () => (calls.push("phoneOf"), PHONE),
      unlink: async () => (calls.push("unlink"), true),
    },
    accounts: { remove: async () => (calls.push("accounts.remove"), { accountSid: "AC1" }) },
    pipeline: {
      deadLetterWhere: async (select) => {
        calls.push("deadLetterWhere");
        const moved = queue.filter((q) => select(q.queue, q.item) !== undefined);
        for (const q of moved) queue.splice(queue.indexOf(q), 1); // a dead letter leaves its queue
        return moved.length;
      },
    },
    introductions: { forget: async () => void calls.push("introductions.forget") },
    media: {
      index: { takeOwned: async () => (calls.push("media.takeOwned"), ["t1", "t2", "t3"]) },
      files: { remove: async (t) => files.delete(t) },
    },
    log: { info: () => undefined },
  });
  const res = await forget(JID);
  assert.deepEqual(calls, ["phoneOf", "unlink", "deadLetterWhere", "accounts.remove", "deadLetterWhere", "introductions.forget", "media.takeOwned"]);
  assert.deepEqual(res, { removed: true, hadCredentials: true, deadLettered: 2, media: 2, phone: PHONE });
  assert.equal(files.size, 0);
});

test("nothing to forget: removed is false", async () => {
  const forget = createForgetUser({ links: { phoneOf: async () => undefined, unlink: async () => false }, log: { info: () => undefined } });
  assert.deepEqual(await forget(JID), { removed: false, hadCredentials: false, deadLettered: 0, media: 0 });
});
