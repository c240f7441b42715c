// Local declarations: @xmpp/component 0.13 ships no types (docs/facts/libraries.md). Only what we use.
declare module "@xmpp/xml" {
  export class Element {
    constructor(name: string, attrs?: Record<string, string | undefined>);
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getChildByAttr(attr: string, value: string, xmlns?: string, recursive?: boolean): Element | undefined;
    getText(): string;
    text(): string;
    append(...children: (Element | string)[]): Element;
    toString(): string;
  }
  type Child = Element | string | undefined | null | false | Child[];
  function xml(name: string, attrs?: Record<string, string | number | undefined> | null, ...children: Child[]): Element;
  namespace xml {
    export { Element };
  }
  export default xml;
}

declare module "@xmpp/component" {
  import type { Element } from "@xmpp/xml";
  import type { EventEmitter } from "node:events";

  export interface JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    toString(): string;
  }

  export interface IncomingContext {
    stanza: Element;
    name: string;
    type: string;
    id: string;
    from: JID | null;
    to: JID | null;
    local: string;
    domain: string;
    resource: string;
    element?: Element;
  }

  export type Middleware = (ctx: IncomingContext, next: () => Promise<unknown>) => unknown;

  export interface Component extends EventEmitter {
    status: string;
    jid: JID | null;
    timeout: number;
    options: { service: string; domain: string };
    socket: { destroy(): void } | null;
    start(): Promise<JID>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    sendMany(els: Element[]): Promise<void>;
    disconnect(timeout?: number): Promise<void>;
    reconnect: EventEmitter & { delay: number; stop(): void; start(): void; scheduleReconnect(): void };
    middleware: { use(fn: Middleware): void; filter(fn: Middleware): void };
    iqCaller: { request(el: Element, timeout?: number): Promise<Element>; get(el: Element, to?: string, timeout?: number): Promise<Element> };
    iqCallee: {
      get(ns: string, name: string, handler: (ctx: IncomingContext) => Element | true | undefined | Promise<Element | true | undefined>): void;
      set(ns: string, name: string, handler: (ctx: IncomingContext) => Element | true | undefined | Promise<Element | true | undefined>): void;
    };
  }

  export function component(opts: { service: string; domain: string; password: string }): Component;
  export { default as xml } from "@xmpp/xml";
  export function jid(s: string): JID;
}
