// Steady traffic both ways through a deployment of gateways, and the ledger that says what became of
// it: inbound texts (signed Twilio webhooks, posted to whichever instance is up, as a load balancer
// would) arriving at an XMPP client, and the client's texts arriving at the fake Twilio. Used by the
// fault tests of several instances and of Redis failover, which assert on its report.
import { randomBytes } from "node:crypto";
import type { FakeTwilio } from "../fakes/fake-twilio.js";
import { inboundSmsParams } from "../fakes/fake-twilio.js";
import { bodyOf, chat } from "./stanzas.js";
import { signedWebhook, type TwilioSigner } from "./twilio-webhooks.js";
import { waitUntil } from "./wait.js";
import type { StanzaElement, TestClient } from "./xmpp-client.js";

export interface TrafficOptions {
  /** Base URLs of the instances that may take a webhook now (asked at each post). */
  instances(): string[];
  signer: TwilioSigner & { accountSid: string };
  client: TestClient;
  twilio: FakeTwilio;
  domain: string;
  /** The client's user's number. */
  userPhone: string;
  /** The outside numbers, one conversation each way per number. */
  contacts: string[];
  /** Texts per second per conversation, each way. */
  perSecond: number;
  /**
   * MessageSids that went through an instance's journal (Redis could not take them): replayed later,
   * such a text may come after later ones another instance took in directly. Counted apart.
   */
  journaled?: () => Set<string>;
  /** A text the fake never got this long after the client sent it is sent again (same stanza id). */
  resendAfterMs?: number;
  /**
   * Also texts to a webhook target (its JID) at the same rate, one conversation: `received()` lists the
   * bodies its receiver got, in order, repeats included.
   */
  webhook?: { jid: string; received(): string[] };
}

export interface DirectionReport {
  /** Accepted: a 2xx to the webhook (inbound); sent by the client (outbound). */
  sent: number;
  /** Distinct texts that arrived. */
  delivered: number;
  lost: number;
  /** Texts that arrived more than once as distinct messages (a second SMS to a phone; a second stanza id at the client). */
  doubled: number;
  /** Arrivals that came before an earlier text of their conversation. */
  orderViolations: number;
}

export interface TrafficReport {
  /** Toward the webhook target, when there is one. */
  webhook?: DirectionReport;
  inbound: DirectionReport & {
    /** The same stanza (same id) written again after a takeover: a client shows it once. */
    sameIdRepeats: number;
    /** Arrivals before an earlier text that came from an instance's journal (not in orderViolations). */
    journalReorders: number;
    /** Longest time with no inbound text arriving at the client while traffic ran. */
    longestGapMs: number;
    /** Posts that an instance did not take (refused, reset, 5xx) and went to another one. */
    retriedPosts: number;
  };
  outbound: DirectionReport & {
    /** Texts the client sent again with the same id (bounced while no instance held the link, or not seen in time). */
    resent: number;
    /** Longest time with no text arriving at the fake Twilio while traffic ran. */
    longestGapMs: number;
    /** Texts the gateway answered with an error (not taken, or not promised): their order is not counted. */
    answeredWithError: number;
    /** A few of the order violations, for the diagnosis. */
    orderExamples?: string[];
  };
}

interface OutText {
  id: string;
  contact: number;
  seq: number;
  sentAt: number;
  resent: boolean;
  answeredWithError?: boolean;
}

export function startTraffic(o: TrafficOptions) {
  // Each run's texts and stanza ids are its own: a repeated id would be (rightly) taken for a repeat.
  const run = randomBytes(3).toString("hex");
  const inPrefix = `in ${run} `;
  const outPrefix = `out ${run} `;
  const resendAfter = o.resendAfterMs ?? 8000;
  const interval = 1000 / o.perSecond;
  let running = true;
  const loops: Promise<void>[] = [];
  let inboundAccepted = 0;
  let retriedPosts = 0;
  const out = new Map<string, OutText>();
  /** Inbound texts a webhook was answered 2xx for. */
  const accepted = new Set<string>();
  const sidOf = new Map<string, string>();
  // Arrival times, stamped by polling the client's list (it keeps no times).
  const arrivals: { at: number; el: StanzaElement }[] = [];
  let seenCount = o.client.received.length;
  const startedAt = Date.now();
  let stoppedAt: number | undefined;
  const stamp = setInterval(() => {
    const now = Date.now();
    for (; seenCount < o.client.received.length; seenCount++) arrivals.push({ at: now, el: o.client.received[seenCount]! });
  }, 10);

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function post(params: Record<string, string>): Promise<void> {
    const { body, headers } = signedWebhook(o.signer, "/twilio/sms", params);
    for (let attempt = 0; ; attempt++) {
      const urls = o.instances();
      const url = urls[Math.floor(Math.random() * urls.length)];
      if (url) {
        try {
          const res = await fetch(`${url}/twilio/sms`, { method: "POST", headers, body, signal: AbortSignal.timeout(15_000) });
          await res.text();
          if (res.ok) return;
        } catch {
          // refused or reset: the instance is going or gone
        }
      }
      retriedPosts++;
      await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 4)));
      if (!running && attempt > 200) throw new Error(`webhook ${params.MessageSid} was never accepted`);
    }
  }

  async function inboundLoop(c: number): Promise<void> {
    for (let seq = 1; running; seq++) {
      const body = `${inPrefix}${c} ${seq}`;
      const MessageSid = `SM${randomBytes(16).toString("hex")}`;
      sidOf.set(body, MessageSid);
      await post({ ...inboundSmsParams({ from: o.contacts[c]!, to: o.userPhone, body, accountSid: o.signer.accountSid }), MessageSid });
      inboundAccepted++;
      accepted.add(body);
      await sleep(interval);
    }
  }

  async function outboundLoop(c: number): Promise<void> {
    for (let seq = 1; running; seq++) {
      const t: OutText = { id: `o-${run}-${c}-${seq}`, contact: c, seq, sentAt: Date.now(), resent: false };
      out.set(`${outPrefix}${c} ${seq}`, t);
      await o.client.send(chat(`${o.contacts[c]}@${o.domain}`, `${outPrefix}${c} ${seq}`, { id: t.id }));
      await sleep(interval);
    }
  }

  // The client's side of "did the gateway take it": an error reply (no instance held the link, or one
  // could not take it now) or no SMS after a while: sent again, same id (the gateway's repeat key).
  const createdBodies = () => new Set(o.twilio.created.map((m) => m.body));
  const handledErrors = new Set<StanzaElement>();
  const resender = setInterval(() => {
    const created = createdBodies();
    const now = Date.now();
    for (const el of o.client.received) {
      if (el.name !== "message" || el.attrs.type !== "error" || handledErrors.has(el)) continue;
      handledErrors.add(el);
      const t = [...out.values()].find((x) => x.id === el.attrs.id);
      if (!t) continue;
      // The gateway said it could not (or could not promise to) take it: its place in the order is no
      // longer promised, whether it was sent anyway ("may still be sent") or is sent again now.
      t.answeredWithError = true;
      if (!created.has(`${outPrefix}${t.contact} ${t.seq}`)) t.sentAt = 0; // resend at once
    }
    for (const [body, t] of out) {
      if (created.has(body) || now - t.sentAt < resendAfter) continue;
      t.resent = true;
      t.sentAt = now;
      void o.client.send(chat(`${o.contacts[t.contact]}@${o.domain}`, body, { id: t.id })).catch(() => undefined);
    }
  }, 250);

  for (let c = 0; c < o.contacts.length; c++) {
    loops.push(inboundLoop(c), outboundLoop(c));
  }

  // Toward the webhook target: the same careful client (an error reply, or nothing received after a
  // while: sent again with the same id).
  const hookPrefix = `hook ${run} `;
  const hooks = new Map<string, { id: string; sentAt: number; resent: boolean; answeredWithError?: boolean }>();
  async function webhookLoop(jid: string): Promise<void> {
    for (let seq = 1; running; seq++) {
      const body = `${hookPrefix}${seq}`;
      const h = { id: `h-${run}-${seq}`, sentAt: Date.now(), resent: false };
      hooks.set(body, h);
      await o.client.send(chat(jid, body, { id: h.id }));
      await sleep(interval);
    }
  }
  const hookResender = o.webhook
    ? setInterval(() => {
        const got = new Set(o.webhook!.received());
        const now = Date.now();
        for (const el of o.client.received) {
          if (el.name !== "message" || el.attrs.type !== "error" || handledErrors.has(el)) continue;
          const h = [...hooks.values()].find((x) => x.id === el.attrs.id);
          if (!h) continue;
          handledErrors.add(el);
          h.answeredWithError = true;
          h.sentAt = 0;
        }
        for (const [body, h] of hooks) {
          if (got.has(body) || now - h.sentAt < resendAfter) continue;
          h.resent = true;
          h.sentAt = now;
          void o.client.send(chat(o.webhook!.jid, body, { id: h.id })).catch(() => undefined);
        }
      }, 250)
    : undefined;
  if (o.webhook) loops.push(webhookLoop(o.webhook.jid));

  function webhookReport(): DirectionReport | undefined {
    if (!o.webhook) return undefined;
    const received = o.webhook.received().filter((b) => b.startsWith(hookPrefix));
    const count = new Map<string, number>();
    let last = 0;
    let orderViolations = 0;
    for (const body of received) {
      const n = (count.get(body) ?? 0) + 1;
      count.set(body, n);
      const h = hooks.get(body);
      if (n > 1 || !h || h.resent || h.answeredWithError) continue;
      const seq = Number(body.slice(hookPrefix.length));
      if (seq < last) orderViolations++;
      last = Math.max(last, seq);
    }
    return {
      sent: hooks.size,
      delivered: count.size,
      lost: [...hooks.keys()].filter((b) => !count.has(b)).length,
      doubled: [...count.values()].filter((n) => n > 1).length,
      orderViolations,
    };
  }

  function inboundReport(): TrafficReport["inbound"] {
    const chats = arrivals.filter(({ el }) => el.name === "message" && el.attrs.type === "chat" && bodyOf(el).startsWith(inPrefix));
    const byBody = new Map<string, Set<string>>();
    const lastSeq = new Map<string, number>();
    let orderViolations = 0;
    let sameIdRepeats = 0;
    let journalReorders = 0;
    const journaled = o.journaled?.() ?? new Set<string>();
    const seenIds = new Set<string>();
    for (const { el } of chats) {
      const body = bodyOf(el);
      const id = el.attrs.id ?? "";
      if (seenIds.has(id)) {
        sameIdRepeats++;
        continue;
      }
      seenIds.add(id);
      const ids = byBody.get(body) ?? new Set<string>();
      ids.add(id);
      byBody.set(body, ids);
      const [c, seq] = body.slice(inPrefix.length).split(" ");
      const prev = lastSeq.get(c!) ?? 0;
      if (Number(seq) < prev) {
        if (journaled.has(sidOf.get(body) ?? "")) journalReorders++;
        else orderViolations++;
      }
      lastSeq.set(c!, Math.max(prev, Number(seq)));
    }
    const end = stoppedAt ?? Date.now();
    let longestGapMs = 0;
    let last = startedAt;
    for (const { at } of chats) {
      if (at > end) break;
      longestGapMs = Math.max(longestGapMs, at - last);
      last = at;
    }
    const delivered = byBody.size;
    return {
      sent: inboundAccepted,
      delivered,
      lost: [...accepted].filter((b) => !byBody.has(b)).length,
      doubled: [...byBody.values()].filter((ids) => ids.size > 1).length,
      orderViolations,
      journalReorders,
      sameIdRepeats,
      longestGapMs,
      retriedPosts,
    };
  }

  function outboundReport(): TrafficReport["outbound"] {
    const created = o.twilio.created.filter((m) => m.body.startsWith(outPrefix) && m.from === o.userPhone);
    const count = new Map<string, number>();
    const lastSeq = new Map<string, number>();
    let orderViolations = 0;
    const examples: string[] = [];
    for (const m of created) {
      count.set(m.body, (count.get(m.body) ?? 0) + 1);
      const [c, seq] = m.body.slice(outPrefix.length).split(" ");
      const t = out.get(m.body);
      // A text the client sent again came after later ones by the client's own doing: not counted.
      if (t && !t.resent && !t.answeredWithError) {
        const prev = lastSeq.get(c!) ?? 0;
        if (Number(seq) < prev) {
          orderViolations++;
          if (examples.length < 5) examples.push(`${m.body} after ${c} ${prev}`);
        }
        lastSeq.set(c!, Math.max(prev, Number(seq)));
      }
    }
    // Gaps from the fake's own arrival times of the create requests (ms; the resource's dates are in seconds).
    let longestGapMs = 0;
    let last = startedAt;
    const end = stoppedAt ?? Date.now();
    for (const r of o.twilio.requests) {
      if (r.method !== "POST" || !String(r.form.Body ?? "").startsWith(outPrefix) || r.at > end) continue;
      longestGapMs = Math.max(longestGapMs, r.at - last);
      last = Math.max(last, r.at);
    }
    return {
      sent: out.size,
      delivered: count.size,
      lost: [...out.keys()].filter((b) => !count.has(b)).length,
      doubled: [...count.values()].filter((n) => n > 1).length,
      orderViolations,
      resent: [...out.values()].filter((t) => t.resent).length,
      answeredWithError: [...out.values()].filter((t) => t.answeredWithError).length,
      ...(examples.length > 0 ? { orderExamples: examples } : {}),
      longestGapMs,
    };
  }

  return {
    /** Stops sending (what is in flight finishes). */
    async stop(): Promise<void> {
      running = false;
      stoppedAt = Date.now();
      await Promise.all(loops);
    },
    /** Waits until everything accepted has arrived (or the time is up), then stops watching. */
    async settle(timeoutMs = 30_000): Promise<TrafficReport> {
      await waitUntil(
        () => {
          const r = { i: inboundReport(), o: outboundReport(), w: webhookReport() };
          return r.i.lost === 0 && r.o.lost === 0 && (r.w?.lost ?? 0) === 0;
        },
        { timeoutMs, what: "every accepted text delivered" },
      ).catch(() => undefined);
      // A little longer: a late repeat would show up now.
      await sleep(1500);
      clearInterval(stamp);
      clearInterval(resender);
      clearInterval(hookResender);
      for (; seenCount < o.client.received.length; seenCount++) arrivals.push({ at: Date.now(), el: o.client.received[seenCount]! });
      const webhook = webhookReport();
      return { inbound: inboundReport(), outbound: outboundReport(), ...(webhook ? { webhook } : {}) };
    },
    report: (): TrafficReport => {
      const webhook = webhookReport();
      return { inbound: inboundReport(), outbound: outboundReport(), ...(webhook ? { webhook } : {}) };
    },
  };
}

export type Traffic = ReturnType<typeof startTraffic>;
