// Baseline: the least any durable XMPP → SMS gateway has to do per message, on this machine, with the
// same XMPP server, Redis and next hop as the gateway run. Started by bench/bench.ts as its own
// process: `outbound-floor.ts <json options>`; `hop` says whether messages go to the fake Twilio (SMS)
// or to the webhook receiver (signed JSON, as webhook targets get them).
//
// Per message: the stanza's attributes and body cut out of the stream with indexOf (no XML parser, no
// JID objects, no checks, no logs); one Redis script that takes the dedupe key, writes the record and
// queues the job; the job read back in batches (XREADGROUP); one POST to the Messages resource (undici,
// keep-alive, 64 connections, no SDK) or one signed POST to the receiver; the answer written to the
// record and the job acknowledged, together with the others finished in the same turn. A conversation's
// messages leave in order (docs/developers/design.md "Ordering"); no retries, no receipts, no limits. Whatever the real
// gateway does beyond this is its own cost: what this reaches is how far any implementation of the
// durable path could go here, the ceiling the gateway's figure should be read against.
import { createHash, createHmac } from "node:crypto";
import { connect } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { createClient } from "redis";
import { Pool } from "undici";

interface Options {
  componentPort: number;
  domain: string;
  secret: string;
  redisUrl: string;
  twilioUrl: string;
  accountSid: string;
  authToken: string;
  /** "sms": POST to `twilioUrl`; "webhook": signed POST to `webhookUrl`. */
  hop: "sms" | "webhook";
  webhookUrl: string;
}

const o = JSON.parse(process.argv[2] ?? "{}") as Options;
const STREAM = "floor:out";
const GROUP = "floor";
const ENQUEUE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', 86400) then
  redis.call('HSET', KEYS[2], 'to', ARGV[2], 'status', 'pending')
  redis.call('EXPIRE', KEYS[2], 86400)
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[1], 'user', ARGV[5], 'from', ARGV[3], 'to', ARGV[2], 'body', ARGV[4])
end
return 1`;

const redis = await createClient({ url: o.redisUrl, disableOfflineQueue: true, commandOptions: { timeout: 0 } } as Parameters<typeof createClient>[0]).connect();
const reader = await redis.duplicate().connect();
await redis.xGroupCreate(STREAM, GROUP, "$", { MKSTREAM: true }).catch(() => undefined);
const enqueueSha = await redis.scriptLoad(ENQUEUE);
const hopUrl = new URL(o.hop === "sms" ? o.twilioUrl : o.webhookUrl);
const next = new Pool(hopUrl.origin, { connections: 64, pipelining: 1 });
const auth = `Basic ${Buffer.from(`${o.accountSid}:${o.authToken}`).toString("base64")}`;
const path = `/2010-04-01/Accounts/${o.accountSid}/Messages.json`;
let seq = 0;

const attr = (tag: string, name: string): string => {
  const at = tag.indexOf(` ${name}=`);
  if (at < 0) return "";
  const q = tag[at + name.length + 2];
  const start = at + name.length + 3;
  return tag.slice(start, tag.indexOf(q!, start));
};

function onMessage(stanza: string): void {
  const tagEnd = stanza.indexOf(">");
  const tag = stanza.slice(0, tagEnd);
  const b = stanza.indexOf("<body>");
  if (b < 0) return;
  const body = stanza.slice(b + 6, stanza.indexOf("</body>", b));
  const from = attr(tag, "from");
  const to = attr(tag, "to");
  const id = `m${++seq}`;
  void redis.evalSha(enqueueSha, {
    keys: [`floor:seen:${from}:${attr(tag, "id")}`, `floor:msg:${id}`, STREAM],
    arguments: [id, to.slice(0, to.indexOf("@")), "+15550100000", body, from.slice(0, from.indexOf("/"))],
  });
}

/**
 * One reader; each job joins the chain of its conversation (sender, recipient), so a conversation's
 * messages leave one after the other, as the gateway's contract wants, while conversations overlap.
 */
async function consume(): Promise<void> {
  const chains = new Map<string, Promise<void>>();
  let inFlight = 0;
  let roomMade: (() => void) | undefined;
  let finished: { id: string; msg: string; sid: string }[] = [];
  const settle = (entry: { id: string; msg: string; sid: string }): void => {
    if (finished.push(entry) > 1) return;
    setImmediate(() => {
      const batch = finished;
      finished = [];
      const multi = redis.multi();
      for (const f of batch) multi.hSet(`floor:msg:${f.msg}`, { sid: f.sid, status: "queued" });
      const ids = batch.map((f) => f.id);
      void multi.xAck(STREAM, GROUP, ids).xDel(STREAM, ids).exec();
    });
  };
  for (;;) {
    if (inFlight >= 2048) await new Promise<void>((r) => (roomMade = r));
    const res = (await reader.xReadGroup(GROUP, "c", { key: STREAM, id: ">" }, { COUNT: 256, BLOCK: 1000 })) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
    for (const { id, message: m } of res?.[0]?.messages ?? []) {
      const conversation = `${m.user}>${m.to}`;
      inFlight++;
      const job = (chains.get(conversation) ?? Promise.resolve())
        .then(() => (o.hop === "sms" ? sms(m) : webhook(m)))
        .then((sid) => settle({ id, msg: m.id!, sid }))
        .finally(() => {
          if (chains.get(conversation) === job) chains.delete(conversation);
          if (--inFlight < 1024 && roomMade) {
            roomMade();
            roomMade = undefined;
          }
        });
      chains.set(conversation, job);
    }
  }
}

async function sms(m: Record<string, string>): Promise<string> {
  const r = await next.request({
    method: "POST",
    path,
    headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ To: m.to!, From: m.from!, Body: m.body!, StatusCallback: `https://gw.bench.test/twilio/status?id=${m.id}` }).toString(),
  });
  return ((await r.body.json()) as { sid: string }).sid;
}

async function webhook(m: Record<string, string>): Promise<string> {
  const body = JSON.stringify({ id: m.id, from: m.from, to: m.to, body: m.body, timestamp: new Date().toISOString() });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = `sha256=${createHmac("sha256", "floor-secret").update(`${timestamp}.`).update(body).digest("hex")}`;
  const r = await next.request({
    method: "POST",
    path: hopUrl.pathname,
    headers: { "content-type": "application/json", "x-switchboard-timestamp": timestamp, "x-switchboard-signature": signature },
    body,
  });
  await r.body.dump();
  return String(r.statusCode);
}

void consume();

const socket = connect({ host: "127.0.0.1", port: o.componentPort });
const decoder = new StringDecoder("utf8");
let text = "";
let ready = false;
socket.setNoDelay(true);
socket.write(`<?xml version='1.0'?><stream:stream to='${o.domain}' xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`);
socket.on("data", (chunk: Buffer) => {
  text += decoder.write(chunk);
  if (!ready) {
    const head = /<stream:stream[^>]*\sid=["']([^"']+)["'][^>]*>/.exec(text);
    if (head && !text.includes("<handshake")) {
      socket.write(
        `<handshake>${createHash("sha1")
          .update(head[1]! + o.secret)
          .digest("hex")}</handshake>`,
      );
      text = text.slice(head.index + head[0].length);
    }
    const done = /<handshake\s*\/>|<handshake><\/handshake>/.exec(text);
    if (!done) return;
    text = text.slice(done.index + done[0].length);
    ready = true;
    process.stdout.write("ready\n");
  }
  let from = 0;
  for (;;) {
    const start = text.indexOf("<message", from);
    if (start < 0) {
      from = Math.max(from, text.length - 8); // keep what may start a <message
      break;
    }
    const end = text.indexOf("</message>", start);
    if (end < 0) {
      from = start;
      break;
    }
    onMessage(text.slice(start, end));
    from = end + 10;
  }
  text = text.slice(from);
});
socket.on("close", () => process.exit(0));
