// The size limit on what the gateway writes to the XMPP server (MAX_DELIVERY_BYTES): a delivery
// that would render larger is given up on (a dead letter after the delivery's tries) instead of being
// written, because Prosody closes a component stream over 512 KiB, and would again at every retry.
// No valid input reaches it (message-in and webhook replies are bounded well below); this checks the
// last line of defence on a component with a stand-in connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Element } from "@xmpp/xml";
import type { Connection } from "../../src/xmpp/connection.js";
import { createComponent } from "../../src/xmpp/component.js";
import { GiveUp } from "../../src/core/ports.js";
import { MAX_DELIVERY_BYTES } from "../../src/xmpp/stanzas.js";

function component() {
  const sent: string[] = [];
  const xmpp = {
    middleware: { use() {}, filter() {} },
    iqCallee: { get() {}, set() {} },
    iqCaller: { request: async () => undefined },
    send: async (el: Element) => void sent.push(el.toString()),
    // deliveries are written as serialized stanzas (batched per event-loop turn)
    write: async (s: string) => void sent.push(s),
    socket: null,
  };
  const connection = { xmpp, isOnline: () => true, state: () => ({ onlineSince: 0 }), onOnline() {} } as unknown as Connection;
  const log = { info() {}, warn() {}, error() {}, debug() {} };
  const out = createComponent({
    connection,
    domain: "sms.example.com",
    defaultRegion: "US",
    outbound: { accept: async () => ({ outcome: "ignored", reason: "test" }) } as never,
    webhooks: { get: async () => undefined, list: async () => [] },
    log: log as never,
    version: "test",
  });
  return { out, sent };
}

const chat = (body: string) => ({ kind: "chat" as const, id: "01TEST", from: "bot@sms.example.com", to: "alice@example.com", body, mediaUrls: [], acceptedAt: Date.now() });

test("a delivery over MAX_DELIVERY_BYTES is given up on, not written; one under it is written", async () => {
  const { out, sent } = component();
  await out.deliver(chat("&".repeat(Math.floor(MAX_DELIVERY_BYTES / 5) - 1000)), { attempt: 1 } as never);
  assert.equal(sent.length, 1, "just under: written");
  await assert.rejects(out.deliver(chat("&".repeat(Math.floor(MAX_DELIVERY_BYTES / 5) + 10)), { attempt: 1 } as never), (e: unknown) => e instanceof GiveUp && /bytes as a stanza/.test(e.message));
  assert.equal(sent.length, 1, "over: nothing written");
});

test("the largest message-in the API accepts renders under MAX_DELIVERY_BYTES, whatever its characters", async () => {
  const { out, sent } = component();
  // 10,000 characters and 10 links of 2,048, all of the character whose escape is longest (' → &apos;)
  const media = Array.from({ length: 10 }, () => `https://e.example/${"'".repeat(2048 - 18)}`);
  await out.deliver({ ...chat([`'`.repeat(10_000), ...media].join("\n")), mediaUrls: media, subject: "'".repeat(256) }, { attempt: 1 } as never);
  assert.equal(sent.length, 1);
  assert.ok(Buffer.byteLength(sent[0]!) < MAX_DELIVERY_BYTES);
});
