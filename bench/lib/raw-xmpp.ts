// Minimal XMPP peers for the benchmark: a client (SASL PLAIN on plain TCP, as the test servers offer
// it on loopback) and a trivial XEP-0114 component. They write stanzas as strings and only look for
// <body> elements in what arrives, so the benchmark's own cost per message stays a few microseconds
// and the same peers serve the baselines and the gateway runs alike.
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";

const STREAMS = "http://etherx.jabber.org/streams";

/** Unescapes the five XML entities (bodies in the benchmark are plain ASCII otherwise). */
function unescape(s: string): string {
  return s.includes("&") ? s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e] ?? "") : s;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;" })[c] ?? c);
}

/** A socket read as text: waits for patterns during the handshake, then hands out every <body>. */
class Link {
  private text = "";
  private readonly decoder = new StringDecoder("utf8");
  private waiter: { re: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void } | undefined;
  private onBody: ((body: string) => void) | undefined;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly what: string,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.read(this.decoder.write(chunk)));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.waiter?.reject(new Error(`${what}: connection closed while waiting for ${this.waiter.re}; got ${this.text.slice(-300)}`));
    });
  }

  private read(s: string): void {
    this.text += s;
    if (this.waiter) {
      const m = this.waiter.re.exec(this.text);
      if (m) {
        const w = this.waiter;
        this.waiter = undefined;
        this.text = this.text.slice(m.index + m[0].length);
        w.resolve(m);
      }
      return;
    }
    if (!this.onBody) {
      this.text = "";
      return;
    }
    let from = 0;
    for (;;) {
      const start = this.text.indexOf("<body>", from);
      if (start < 0) {
        from = this.text.length;
        break;
      }
      const end = this.text.indexOf("</body>", start);
      if (end < 0) {
        from = start;
        break;
      }
      this.onBody(unescape(this.text.slice(start + 6, end)));
      from = end + 7;
    }
    // keep only what may start an unfinished <body>
    this.text = from >= this.text.length ? this.text.slice(-5) : this.text.slice(from);
  }

  expect(re: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    const m = re.exec(this.text);
    if (m) {
      this.text = this.text.slice(m.index + m[0].length);
      return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.what}: no ${re} within ${timeoutMs} ms; got ${this.text.slice(-300)}`)), timeoutMs);
      this.waiter = {
        re,
        resolve: (x) => {
          clearTimeout(t);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
  }

  bodies(cb: (body: string) => void): void {
    this.onBody = cb;
    this.text = "";
  }

  write(s: string): boolean {
    return this.socket.write(s);
  }

  /** Resolves once the socket can take more (after write() returned false). */
  drained(): Promise<void> {
    return this.socket.writableNeedDrain ? new Promise((r) => this.socket.once("drain", () => r())) : Promise.resolve();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.end("</stream:stream>");
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }
}

function open(port: number, what: string): Promise<Link> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => resolve(new Link(socket, what)));
    socket.once("error", reject);
  });
}

export interface RawPeer {
  /** bare or full JID of this peer */
  jid: string;
  /** Writes raw XML; false when the socket's buffer is full (wait on drained()). */
  write(xml: string): boolean;
  drained(): Promise<void>;
  /** Every <body> text that arrives from now on. */
  onBody(cb: (body: string) => void): void;
  close(): Promise<void>;
}

function peer(link: Link, jid: string): RawPeer {
  return { jid, write: (x) => link.write(x), drained: () => link.drained(), onBody: (cb) => link.bodies(cb), close: () => link.close() };
}

/** Logs a user in on c2s (plain TCP, SASL PLAIN), binds `resource` and sends initial presence. */
export async function rawClient(o: { port: number; domain: string; username: string; password: string; resource: string }): Promise<RawPeer> {
  const link = await open(o.port, `client ${o.username}`);
  const header = `<?xml version='1.0'?><stream:stream to='${o.domain}' xmlns='jabber:client' xmlns:stream='${STREAMS}' version='1.0'>`;
  link.write(header);
  await link.expect(/<\/stream:features>/);
  link.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${o.username}\0${o.password}`).toString("base64")}</auth>`);
  await link.expect(/<success[^>]*?(\/>|<\/success>)/);
  link.write(header);
  await link.expect(/<\/stream:features>/);
  link.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${o.resource}</resource></bind></iq>`);
  const bound = await link.expect(/<jid>([^<]+)<\/jid>/);
  await link.expect(/<\/iq>/);
  link.write(`<iq type='set' id='session'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
  await link.expect(/id=["']session["']/);
  link.write("<presence/>");
  return peer(link, bound[1]!);
}

/** Connects a trivial XEP-0114 component as `domain`. */
export async function rawComponent(o: { port: number; domain: string; secret: string }): Promise<RawPeer> {
  const link = await open(o.port, `component ${o.domain}`);
  link.write(`<?xml version='1.0'?><stream:stream to='${o.domain}' xmlns='jabber:component:accept' xmlns:stream='${STREAMS}'>`);
  const head = await link.expect(/<stream:stream[^>]*>/);
  const id = /\sid=["']([^"']+)["']/.exec(head[0])?.[1];
  if (!id) throw new Error(`component ${o.domain}: no stream id in ${head[0]}`);
  link.write(
    `<handshake>${createHash("sha1")
      .update(id + o.secret)
      .digest("hex")}</handshake>`,
  );
  await link.expect(/<handshake\s*\/>|<handshake><\/handshake>/);
  return peer(link, o.domain);
}
