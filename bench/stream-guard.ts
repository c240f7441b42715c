// Micro-benchmark of what every byte from the XMPP server goes through before the gateway sees a
// stanza: xmpp.js's parser alone (its own _onData) and behind the stream guard
// (src/xmpp/stream-guard.ts). Typical ~500-byte chat messages, as a server routes them to a
// component, arrive in 64 KiB socket reads; prints messages/s for each, the median of some rounds.
//
//   npx tsx bench/stream-guard.ts            # 300,000 messages, 7 rounds
//   GUARD_BENCH_MESSAGES=100000 GUARD_BENCH_ROUNDS=3 npx tsx bench/stream-guard.ts
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import xml, { type Element } from "@xmpp/xml";
import type { Component } from "@xmpp/component";
import { guardStream } from "../src/xmpp/stream-guard.js";

const MESSAGES = Number(process.env.GUARD_BENCH_MESSAGES ?? 300_000);
const ROUNDS = Number(process.env.GUARD_BENCH_ROUNDS ?? 7);
const READ = 64 * 1024;

const require = createRequire(import.meta.url);
const { Parser } = require("@xmpp/xml") as { Parser: new () => EventEmitter & { write(s: string): void } };

const words = ["hello", "don't", "forget", "the", "meeting", "at", "3", "pm", "café", "&", "<3", "ok?", "see", "you", "there", "😀"];
function message(i: number): string {
  let body = "";
  for (let w = 0; body.length < 130; w++) body += `${words[(i * 7 + w * 3) % words.length]} `;
  // As Prosody writes a routed message to a component: attributes in single quotes, text escaped.
  return xml(
    "message",
    {
      xmlns: "jabber:component:accept",
      from: `alice${i % 50}@localhost/phone-${(i % 9973).toString(16)}`,
      to: `+1555${String(2000000 + (i % 7919))}@sms.localhost`,
      type: "chat",
      id: `msg-${i}-${(i * 2654435761) % 1e9}`,
      "xml:lang": "en",
    },
    xml("body", {}, body),
    xml("active", { xmlns: "http://jabber.org/protocol/chatstates" }),
    xml("request", { xmlns: "urn:xmpp:receipts" }),
    xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: `o-${i}-5f3a9c` }),
  )
    .toString()
    .replace(/"/g, "'");
}

const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='b1f2' from='sms.localhost'><handshake/>";
const stanzas = Array.from({ length: MESSAGES }, (_, i) => message(i));
const wire = Buffer.from(header + stanzas.join(""), "utf8");
const reads: Buffer[] = [];
for (let i = 0; i < wire.length; i += READ) reads.push(wire.subarray(i, i + READ));

interface Link {
  onData(d: Buffer): void;
  count(): number;
}

/** xmpp.js's own read path: each read decoded on its own, straight into the parser. */
function bare(): Link {
  const parser = new Parser();
  let n = 0;
  parser.on("element", () => n++);
  return { onData: (d) => parser.write(d.toString("utf8")), count: () => n };
}

/** The same behind the guard, on a stand-in for xmpp.js's connection (as test/unit/xml.property.test.ts). */
function guarded(): Link {
  const conn = new EventEmitter() as EventEmitter & Record<string, unknown>;
  const parser = new Parser();
  let n = 0;
  parser.on("element", (el: Element) => {
    n++;
    conn.emit("element", el);
  });
  Object.assign(conn, {
    socket: { write: () => true, destroy: () => undefined },
    parser,
    Parser,
    write: async () => undefined,
    send: async () => undefined,
    _onData: () => undefined,
  });
  guardStream(conn as unknown as Component, { maxStanzaBytes: 1024 * 1024, log: { warn: () => undefined } as never });
  const onData = conn._onData as (d: Buffer) => void;
  return { onData, count: () => n };
}

function round(make: () => Link): number {
  const link = make();
  const t0 = process.hrtime.bigint();
  for (const r of reads) link.onData(r);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (link.count() !== MESSAGES + 1) throw new Error(`parsed ${link.count()} elements, expected ${MESSAGES + 1}`);
  return MESSAGES / (ms / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, number[]> = { "xmpp.js parser alone": [], "behind the stream guard": [] };
round(bare);
round(guarded); // warm-up
for (let i = 0; i < ROUNDS; i++) {
  // interleaved, so a noisy neighbour weighs on both alike
  results["xmpp.js parser alone"]!.push(round(bare));
  results["behind the stream guard"]!.push(round(guarded));
}
const avgBytes = Math.round((wire.length - header.length) / MESSAGES);
console.log(`${MESSAGES.toLocaleString("en-US")} messages of ~${avgBytes} bytes in ${reads.length} reads of ${READ / 1024} KiB; median of ${ROUNDS} rounds`);
for (const [name, xs] of Object.entries(results)) {
  console.log(`  ${name.padEnd(26)} ${Math.round(median(xs)).toLocaleString("en-US").padStart(10)} messages/s  (${xs.map((x) => Math.round(x / 1000)).join(", ")} k)`);
}
const share = median(results["behind the stream guard"]!) / median(results["xmpp.js parser alone"]!);
console.log(`  guard + parser runs at ${(share * 100).toFixed(1)} % of the parser alone`);
