// A lean HTTP/1.1 load client: keep-alive sockets, one request at a time on each (as Twilio and most
// webhook senders do: no pipelining), requests written as one string and answers read only for their
// status and length. undici costs the benchmark process ~3x more CPU per request, which on a small
// machine would measure the load generator instead of the server.
import { connect, type Socket } from "node:net";

export interface RawHttpAnswer {
  status: number;
  headers: string;
}

interface Pending {
  resolve: (a: RawHttpAnswer) => void;
  reject: (e: Error) => void;
}

class Connection {
  private socket: Socket | undefined;
  private buf = "";
  private pending: Pending | undefined;
  private need = -1; // bytes of body still expected; -1 while reading the head
  private answer: RawHttpAnswer | undefined;
  busy = false;

  constructor(
    private readonly port: number,
    private readonly host: string,
  ) {}

  private open(): Socket {
    const s = connect({ port: this.port, host: this.host });
    s.setNoDelay(true);
    s.setEncoding("latin1");
    s.on("data", (d: string) => this.read(d));
    const fail = (e: Error) => {
      this.socket = undefined;
      this.buf = "";
      this.need = -1;
      const p = this.pending;
      this.pending = undefined;
      p?.reject(e);
    };
    s.on("error", fail);
    s.on("close", () => fail(new Error("connection closed")));
    this.socket = s;
    return s;
  }

  private read(d: string): void {
    this.buf += d;
    for (;;) {
      if (this.need < 0) {
        const end = this.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + 4);
        const status = Number(head.slice(9, 12));
        const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!len) {
          this.socket?.destroy(new Error(`answer without content-length: ${head.slice(0, 200)}`));
          return;
        }
        this.need = Number(len[1]);
        this.answer = { status, headers: head };
      }
      if (this.buf.length < this.need) return;
      this.buf = this.buf.slice(this.need);
      this.need = -1;
      const p = this.pending;
      this.pending = undefined;
      if (p && this.answer) p.resolve(this.answer);
      if (this.buf.length === 0) return;
    }
  }

  request(raw: string): Promise<RawHttpAnswer> {
    const s = this.socket ?? this.open();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      s.write(raw, "latin1");
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}

export class RawHttpPool {
  private readonly idle: Connection[] = [];
  private readonly all: Connection[] = [];
  private readonly queue: (() => void)[] = [];

  constructor(
    readonly origin: string,
    connections: number,
  ) {
    const u = new URL(origin);
    for (let i = 0; i < connections; i++) {
      const c = new Connection(Number(u.port), u.hostname);
      this.idle.push(c);
      this.all.push(c);
    }
  }

  /** POSTs `body` (a string: its UTF-8 bytes are sent) with `headers`. */
  async post(path: string, headers: Record<string, string>, body: string): Promise<RawHttpAnswer> {
    let c = this.idle.pop();
    while (!c) {
      await new Promise<void>((r) => this.queue.push(r));
      c = this.idle.pop();
    }
    const bytes = Buffer.from(body, "utf8");
    let head = `POST ${path} HTTP/1.1\r\nhost: ${new URL(this.origin).host}\r\ncontent-length: ${bytes.length}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    try {
      return await c.request(head + "\r\n" + bytes.toString("latin1"));
    } finally {
      this.idle.push(c);
      this.queue.shift()?.();
    }
  }

  close(): void {
    for (const c of this.all) c.close();
  }
}
