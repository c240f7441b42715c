// Feeds generated hostile stanzas to a running gateway and checks how it answers: every IQ get/set
// gets exactly one reply (from the gateway, or from the server when it refused the stanza itself), no
// IQ result/error and no message error is answered, and the component link never drops. Two ways in:
//
// - "server": a logged-in user sends the stanza through the real XMPP server (which refuses or
//   normalises what it must: only well-formed XML gets through);
// - "direct": the parsed stanza is handed to the component (`xmppEntity.emit("element", …)`) as if the
//   server had sent it, with text the server would never let through (controls, non-characters, lone
//   surrogates). Its answers still go out through the server to the user, so whatever the gateway
//   writes must be acceptable to the server, or it closes the component stream.
//
// Used by test/integration/hostile-stanzas.test.ts (a few hundred cases) and fuzz/fuzz.ts (many).
import xmlGateway from "@xmpp/xml";
import type { Gateway } from "../../src/app/gateway.js";
import { build, type GeneratedStanza } from "./hostile.js";
import { xml as xmlClient, type StanzaElement, type TestClient } from "./xmpp-client.js";

export interface StanzaFuzzStats {
  sent: number;
  skippedTooLarge: number;
  iqs: number;
  iqMissing: string[];
  iqDuplicated: string[];
  /** Answers to an IQ result/error or a message error (RFC 6120: never answer those). */
  answeredErrors: string[];
  /** IQ replies with internal-server-error: a handler threw. */
  internalErrors: string[];
  repliesBy: Map<string, number>;
}

export function emptyStats(): StanzaFuzzStats {
  return { sent: 0, skippedTooLarge: 0, iqs: 0, iqMissing: [], iqDuplicated: [], answeredErrors: [], internalErrors: [], repliesBy: new Map() };
}

export class StanzaFuzzer {
  private seq = 0;
  /** ids sent since the last settle(): IQ get/set (one reply expected) and IQ result/error or message error (none expected) */
  private expectOne = new Set<string>();
  private expectNone = new Set<string>();
  /** the start of each stanza sent since the last settle(), to show what went wrong */
  private sentHead = new Map<string, string>();
  readonly stats = emptyStats();

  constructor(
    private readonly gateway: Gateway,
    private readonly user: TestClient,
    private readonly opts: { tag: string; maxBytes: number },
  ) {}

  /** The last stanzas sent (their start), newest last: what to look at when the user was disconnected. */
  readonly recent: string[] = [];

  /** Sends one generated stanza; resolves once it is written (or handed over). */
  async send(g: GeneratedStanza, via: "server" | "direct"): Promise<void> {
    if (!this.user.isOnline()) throw new Error(`the user was disconnected; the last stanzas sent were:\n${this.recent.join("\n")}`);
    const n = ++this.seq;
    const id = `${this.opts.tag}${n}-`;
    const tree = { ...g.tree, attrs: { ...g.tree.attrs } };
    if (g.kind === "iq") {
      tree.attrs.id = `${id}q`;
      if (g.type === "result" || g.type === "error") this.expectNone.add(id);
      else this.expectOne.add(id);
    } else if (g.type === "error") {
      tree.attrs.id = `${id}e`;
      this.expectNone.add(id);
    } else if (n % 3 !== 0) tree.attrs.id = `${id}m`; // some without an id
    if (via === "server") {
      const el = build(tree, xmlClient as never) as StanzaElement;
      const text = el.toString();
      if (Buffer.byteLength(text) > this.opts.maxBytes) return this.skip(id);
      this.stats.sent++;
      this.sentHead.set(id, text.slice(0, 400));
      this.remember(text);
      await this.user.send(el);
    } else {
      tree.attrs.from = this.user.jid;
      const el = build(tree, xmlGateway as never) as ReturnType<typeof xmlGateway>;
      const text = el.toString();
      if (Buffer.byteLength(text) > this.opts.maxBytes) return this.skip(id);
      this.stats.sent++;
      this.sentHead.set(id, text.slice(0, 400));
      this.remember(text);
      this.gateway.xmppEntity.emit("element", el);
    }
  }

  private remember(text: string): void {
    this.recent.push(`${text.length} chars: ${text.slice(0, 300)}`);
    if (this.recent.length > 5) this.recent.shift();
  }

  private skip(id: string): void {
    this.expectOne.delete(id);
    this.expectNone.delete(id);
    this.stats.skippedTooLarge++;
  }

  /**
   * Waits (up to timeoutMs) until every IQ sent since the last settle has its reply, then a grace
   * period for duplicates, and records what went wrong. Clears the user's received stanzas (bounded
   * memory for long runs).
   */
  async settle(timeoutMs = 10_000, graceMs = 300): Promise<void> {
    const prefix = (id: string | undefined) => (id ? /^([a-z]+\d+-)/.exec(id)?.[1] : undefined);
    const count = () => {
      const replies = new Map<string, StanzaElement[]>();
      for (const el of this.user.received) {
        const p = prefix(el.attrs.id);
        if (!p) continue;
        const list = replies.get(p) ?? [];
        list.push(el);
        replies.set(p, list);
      }
      return replies;
    };
    const end = Date.now() + timeoutMs;
    let replies = count();
    while ([...this.expectOne].some((id) => !replies.get(id)?.some((r) => r.name === "iq")) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 25));
      replies = count();
    }
    await new Promise((r) => setTimeout(r, graceMs));
    replies = count();
    for (const id of this.expectOne) {
      this.stats.iqs++;
      const iqReplies = (replies.get(id) ?? []).filter((r) => r.name === "iq" && (r.attrs.type === "result" || r.attrs.type === "error"));
      if (iqReplies.length === 0) this.stats.iqMissing.push(`${id} ${JSON.stringify(this.sentHead.get(id))}`);
      if (iqReplies.length > 1) this.stats.iqDuplicated.push(`${id} ${iqReplies.map((r) => r.toString().slice(0, 200)).join(" | ")}`);
      for (const r of iqReplies) {
        const by = r.attrs.from ?? "";
        const key = by.includes("@") || by.includes("/") ? "contact" : by;
        this.stats.repliesBy.set(key, (this.stats.repliesBy.get(key) ?? 0) + 1);
        if (r.getChild("error")?.getChild("internal-server-error", "urn:ietf:params:xml:ns:xmpp-stanzas")) this.stats.internalErrors.push(`${id} ${r.toString().slice(0, 300)}`);
      }
    }
    for (const id of this.expectNone) {
      const answers = (replies.get(id) ?? []).filter((r) => r.attrs.type === "error" || r.name === "iq");
      if (answers.length > 0) this.stats.answeredErrors.push(`${id} ${answers[0]!.toString().slice(0, 300)}`);
    }
    this.expectOne.clear();
    this.expectNone.clear();
    this.sentHead.clear();
    this.user.received.length = 0;
  }
}

/** An XEP-0199 ping from the user to the gateway's domain, through the server; true when answered with a result. */
export async function pingGateway(user: TestClient, domain: string, timeoutMs = 5000): Promise<boolean> {
  try {
    const r = await user.iq(xmlClient("iq", { type: "get", to: domain }, xmlClient("ping", { xmlns: "urn:xmpp:ping" })), timeoutMs);
    return r.attrs.type === "result";
  } catch {
    return false;
  }
}
