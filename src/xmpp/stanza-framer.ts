// Frames the top-level elements of the XMPP stream the server sends (RFC 6120 §4.1: a stream header,
// then stanzas and other top-level elements, then the closing tag), so that the stream guard
// (stream-guard.ts) hands xmpp.js's parser only whole top-level elements and can drop one larger than
// XMPP_MAX_STANZA_BYTES without losing its place in the stream: the parser never sees any of it.
//
// It is not a parser: it follows the markup just far enough to know where each top-level element
// ends (start, end and empty-element tags, attribute values, which may hold '>' and '/', CDATA
// sections, the XML declaration). It runs on every byte the server sends, so it jumps over text and
// attribute values with indexOf and reads only names a character at a time (bench/stream-guard.ts
// measures it; a version that jumped between '>' and quotes with indexOf too was slower, as tags are
// short). Comments, processing instructions and DTDs are forbidden in XMPP
// (RFC 6120 §11.1): they close the stream (restricted-xml), as does markup it cannot frame
// (bad-format). Text outside the top-level elements, whitespace keepalives (RFC 6120 §4.6.1) and
// nothing else when the server is well-behaved, is not handed on: the parser would keep every piece of
// it as text of the stream's root element, for the life of the connection.

/** Why the stream cannot be read on: the stream error condition to close it with (RFC 6120 §4.9.3). */
export class FramingError extends Error {
  constructor(
    readonly condition: "bad-format" | "restricted-xml" | "policy-violation",
    message: string,
  ) {
    super(message);
    this.name = "FramingError";
  }
}

/** A top-level element that was larger than the limit, dropped whole. */
export interface Oversize {
  /** Its start tag as received (`<message from='…' …>`), when that much came within the limit. */
  startTag?: string;
  /** Its size in bytes (UTF-8) as received. */
  bytes: number;
}

export interface FramerSink {
  /** Text of whole top-level elements (several may come in one call), in stream order. */
  write(text: string): void;
  /** Called in stream order, once the dropped element has ended. */
  oversize(o: Oversize): void;
}

const GT = 0x3e; // >
const SLASH = 0x2f;
const QMARK = 0x3f;
const BANG = 0x21;
const APOS = 0x27;
const QUOT = 0x22;
const RSQB = 0x5d; // ]
const CDATA_OPEN = "[CDATA[";

const enum Mode {
  /** character data (or nothing, between top-level elements) */
  Text,
  /** just after '<': what kind of markup is not known yet */
  Open,
  /** inside a start or end tag, outside attribute values */
  Tag,
  /** inside an attribute value */
  Quote,
  /** inside the XML declaration `<?xml …?>` */
  Decl,
  /** after '<!': matching "[CDATA[" */
  Bang,
  /** inside a CDATA section */
  CData,
}

/** Position of the next `c` in `s` at or after `from`, or `s.length` when there is none. */
function next(s: string, c: string, from: number): number {
  const i = s.indexOf(c, from);
  return i < 0 ? s.length : i;
}

/** Size of `s` in UTF-8 when it is at most `max`, or a number over `max` (exact only past the cheap bound). */
function bytesUpTo(s: string, from: number, to: number, max: number): number {
  const chars = to - from;
  // A UTF-16 code unit is 1 to 3 bytes in UTF-8 (a surrogate pair, two units, is 4).
  if (chars * 3 <= max || chars > max) return chars;
  return Buffer.byteLength(s.slice(from, to));
}

export class StanzaFramer {
  /** Element depth: 0 before the stream header, 1 between top-level elements, 2+ inside one. */
  private depth = 0;
  private mode = Mode.Text;
  private endTag = false;
  /** In Mode.Quote: the quote that closes the value. */
  private quote = "'";
  /**
   * What the previous read left to finish a token: in Tag, 1 when it ended with '/'; in Decl, 1 when it
   * ended with '?'; in Bang, how much of "[CDATA[" was matched; in CData, how many ']' it ended with.
   */
  private carry = 0;
  /** A top-level element (or the XML declaration) has begun and not ended. */
  private open = false;
  /** Depth where the open element began: 0 for the stream header and the XML declaration. */
  private openDepth = 0;
  /** Characters from the open element's start to the end of its start tag, once seen (else -1). */
  private startTagEnd = -1;
  /** The open element's text from earlier reads: at most `maxBytes` bytes in all. */
  private held: string[] = [];
  private heldBytes = 0;
  private heldChars = 0;
  /** The open element went over the limit: the rest of it is dropped, its size counted. */
  private skipping = false;
  private skipped: Oversize = { bytes: 0 };
  /** In the current read: s[from, done) is whole elements not written yet; `done` ends the last one. */
  private from = 0;
  private done = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly sink: FramerSink,
  ) {}

  /** Bytes of an unfinished element held until its end comes (never more than the limit). */
  get heldSize(): number {
    return this.heldBytes;
  }

  /** Takes one read of the stream, decoded; throws FramingError when the stream cannot be read on. */
  feed(s: string): void {
    const n = s.length;
    if (n === 0) return; // a read that ended inside a character
    let p = 0;
    this.from = this.done = 0;
    while (p < n) {
      switch (this.mode) {
        case Mode.Text: {
          const lt = s.indexOf("<", p);
          if (lt < 0) {
            p = n;
            break;
          }
          if (!this.open) this.begin(s, lt);
          p = lt + 1;
          this.mode = Mode.Open;
          break;
        }
        case Mode.Open: {
          const c = s.charCodeAt(p);
          this.carry = 0;
          if (c === SLASH) {
            this.endTag = true;
            this.mode = Mode.Tag;
            p++;
          } else if (c === QMARK) {
            // Only the XML declaration, before the stream header (RFC 6120 §11.1, §11.5).
            if (this.depth !== 0) throw new FramingError("restricted-xml", "a processing instruction in the stream");
            this.mode = Mode.Decl;
            p++;
          } else if (c === BANG) {
            this.mode = Mode.Bang;
            p++;
          } else {
            this.endTag = false;
            this.mode = Mode.Tag;
          }
          break;
        }
        case Mode.Tag: {
          // Names, '=' and spaces are short: read a character at a time. Attribute values, most of a
          // tag (addresses, ids, namespaces) and free to hold '>' and '/', are jumped over with indexOf.
          let c = 0;
          while (p < n) {
            c = s.charCodeAt(p);
            if (c === GT) break;
            if (c === APOS || c === QUOT) {
              const q = s.indexOf(c === APOS ? "'" : '"', p + 1);
              if (q < 0) {
                this.quote = c === APOS ? "'" : '"';
                this.mode = Mode.Quote;
                p = n;
                break;
              }
              p = q + 1;
              c = 0;
            } else p++;
          }
          if (c !== GT) {
            // the read ended inside the tag (or inside a value: Mode.Quote)
            this.carry = s.charCodeAt(n - 1) === SLASH ? 1 : 0;
            break;
          }
          const gt = p;
          p = gt + 1;
          this.mode = Mode.Text;
          if (this.endTag) {
            if (this.depth === 0) throw new FramingError("bad-format", "an end tag outside the stream");
            this.depth--;
          } else if (gt === 0 ? this.carry === 0 : s.charCodeAt(gt - 1) !== SLASH) {
            // a start tag (an empty-element tag `<x/>` leaves the depth as it is)
            this.depth++;
            if (this.depth === 2 && this.open) this.startTagEnd = this.heldChars + p - this.done;
          }
          if (this.depth <= 1 && this.open) this.end(s, p);
          break;
        }
        case Mode.Quote: {
          const q = s.indexOf(this.quote, p);
          if (q < 0) {
            p = n;
            break;
          }
          p = q + 1;
          this.mode = Mode.Tag;
          this.carry = 0;
          break;
        }
        case Mode.Decl: {
          const gt = next(s, ">", p);
          if (gt === n) {
            this.carry = s.charCodeAt(n - 1) === QMARK ? 1 : 0;
            p = n;
            break;
          }
          const closes = gt === 0 ? this.carry === 1 : s.charCodeAt(gt - 1) === QMARK;
          p = gt + 1;
          this.carry = 0;
          if (closes) {
            this.mode = Mode.Text;
            if (this.open) this.end(s, p);
          }
          break;
        }
        case Mode.Bang: {
          while (p < n && this.carry < CDATA_OPEN.length) {
            if (s.charCodeAt(p) !== CDATA_OPEN.charCodeAt(this.carry)) throw new FramingError("restricted-xml", "a comment or a DTD in the stream");
            this.carry++;
            p++;
          }
          if (this.carry === CDATA_OPEN.length) {
            if (this.depth < 2) throw new FramingError("bad-format", "a CDATA section outside a stanza");
            this.mode = Mode.CData;
            this.carry = 0;
          }
          break;
        }
        case Mode.CData: {
          let end = -1;
          if (p === 0 && this.carry > 0) {
            // "]]>" split between reads: the ']' the previous read ended with, then this one's start
            const k = ("]".repeat(this.carry) + s.slice(0, 2)).indexOf("]]>");
            if (k >= 0 && k < this.carry) end = k + 3 - this.carry;
          }
          if (end < 0) {
            const k = s.indexOf("]]>", p);
            if (k >= 0) end = k + 3;
          }
          if (end < 0) {
            const tail = s.charCodeAt(n - 1) === RSQB ? (n >= 2 && s.charCodeAt(n - 2) === RSQB ? 2 : 1) : 0;
            this.carry = tail === 1 && n === 1 && p === 0 ? Math.min(2, this.carry + 1) : tail;
            p = n;
            break;
          }
          p = end;
          this.carry = 0;
          this.mode = Mode.Text;
          break;
        }
      }
    }
    if (this.done > this.from) this.sink.write(s.slice(this.from, this.done));
    if (this.open) this.hold(s);
  }

  /** A top-level element (or the XML declaration) begins at s[lt]; text before it is dropped. */
  private begin(s: string, lt: number): void {
    if (lt > this.done) {
      if (this.done > this.from) this.sink.write(s.slice(this.from, this.done));
      this.from = this.done = lt;
    }
    this.open = true;
    this.openDepth = this.depth;
    this.startTagEnd = -1;
  }

  /** The open element ends just before s[e]. */
  private end(s: string, e: number): void {
    this.open = false;
    const start = this.done; // 0 when it began in an earlier read
    if (this.skipping) {
      this.skipping = false;
      this.skipped.bytes += Buffer.byteLength(s.slice(start, e));
      this.from = this.done = e;
      this.sink.oversize(this.skipped);
      return;
    }
    const held = this.held.length > 0;
    const bytes = held ? this.heldBytes + Buffer.byteLength(s.slice(start, e)) : bytesUpTo(s, start, e, this.maxBytes);
    if (bytes <= this.maxBytes) {
      if (held) {
        // the first element to end in this read: nothing before it to write
        this.sink.write(this.held.join("") + s.slice(start, e));
        this.from = e;
        this.release();
      }
      this.done = e;
      return;
    }
    if (this.done > this.from) this.sink.write(s.slice(this.from, this.done));
    const text = held ? this.held.join("") + s.slice(start, e) : s.slice(start, e);
    const oversize = { startTag: this.startTagEnd > 0 ? text.slice(0, this.startTagEnd) : undefined, bytes: Buffer.byteLength(text) };
    this.release();
    this.from = this.done = e;
    this.tooLarge(oversize);
  }

  /** The read ended inside an element: keep its text for the next reads, or drop it past the limit. */
  private hold(s: string): void {
    const tail = this.done === 0 ? s : s.slice(this.done);
    const bytes = Buffer.byteLength(tail);
    if (this.skipping) {
      this.skipped.bytes += bytes;
      return;
    }
    if (this.heldBytes + bytes <= this.maxBytes) {
      this.held.push(tail);
      this.heldBytes += bytes;
      this.heldChars += tail.length;
      return;
    }
    if (this.openDepth === 0) this.tooLarge({ bytes: this.heldBytes + bytes });
    const text = this.held.join("") + tail;
    this.skipped = { startTag: this.startTagEnd > 0 ? text.slice(0, this.startTagEnd) : undefined, bytes: this.heldBytes + bytes };
    this.release();
    this.skipping = true;
  }

  private release(): void {
    this.held = [];
    this.heldBytes = 0;
    this.heldChars = 0;
  }

  private tooLarge(o: Oversize): void {
    // The stream header cannot be left out: without it there is no stream.
    if (this.openDepth === 0) throw new FramingError("policy-violation", `the stream header is larger than ${this.maxBytes} bytes`);
    this.sink.oversize(o);
  }
}
