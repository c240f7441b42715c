// GET /sandbox/events on its own: the SSE framing, the heartbeat, listeners released when the reader
// goes away, and open streams ended when the server closes (close must not wait on them).
import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { createSandboxProvider, type SandboxMessage } from "../../src/adapters/sandbox/provider.js";
import type { Inbound } from "../../src/core/flows/sms-in.js";
import { sandboxRoutes } from "../../src/http/sandbox-routes.js";

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, pattern: RegExp, timeoutMs = 3000): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(text)) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify(text)}`);
    const r = await reader.read();
    if (r.done) throw new Error(`stream ended before ${pattern}: ${JSON.stringify(text)}`);
    text += decoder.decode(r.value, { stream: true });
  }
  return text;
}

test("events: ready, one message event per change, a heartbeat, and cleanup", async () => {
  const sandbox = createSandboxProvider({ stepMs: 5, onStatus: () => {} });
  let listeners = 0;
  const counted = {
    ...sandbox,
    onMessage(l: (m: SandboxMessage) => void) {
      listeners++;
      const off = sandbox.onMessage(l);
      return () => {
        listeners--;
        off();
      };
    },
  };
  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  sandboxRoutes(app, { sandbox: counted, inbound: {} as Inbound, heartbeatMs: 50 });
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  try {
    const ctrl = new AbortController();
    const res = await fetch(`${base}/sandbox/events`, { signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-cache, no-transform");
    const reader = res.body!.getReader();
    await readUntil(reader, /event: ready\ndata: \{\}\n\n/);
    assert.equal(listeners, 1);
    sandbox.recordInbound({ id: "IN1", from: "+15552223333", to: "+15550001111", body: "two\nlines" });
    const text = await readUntil(reader, /event: message\ndata: .*IN1.*\n\n/);
    const data = /event: message\ndata: (.*)\n\n/.exec(text)![1]!;
    assert.deepEqual(JSON.parse(data), { id: "IN1", direction: "in", from: "+15552223333", to: "+15550001111", body: "two\nlines", media: [], at: JSON.parse(data).at, status: "received" });
    await readUntil(reader, /^: heartbeat\n\n/m);
    ctrl.abort();
    const deadline = Date.now() + 2000;
    const count = (): number => listeners;
    while (count() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(listeners, 0, "the listener is released when the reader goes away");

    // a stream still open when the server closes is ended, and close does not wait on it
    const open = await fetch(`${base}/sandbox/events`);
    const openReader = open.body!.getReader();
    await readUntil(openReader, /event: ready/);
    const started = Date.now();
    await app.close();
    assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
    assert.equal(listeners, 0);
    await openReader.read().then(
      (r) => assert.ok(r.done || r.value, "ends"),
      () => {}, // or errors: either way it is over
    );
  } finally {
    await app.close();
    await sandbox.close();
  }
});
