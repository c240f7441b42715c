import { createServer } from "node:net";

/**
 * Ports are picked below Linux's ephemeral range (32768–60999 by default, where the kernel picks the
 * local port of every outgoing connection): a port the kernel handed out earlier would be free when
 * checked, then taken by some client's connection before the server that was given it binds it
 * (ejabberd failed to start with eaddrinuse this way when many processes ran at once).
 */
const LOW = 20000;
const HIGH = 32767;
/** Ports handed out by this process: each one once. */
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen({ host: "127.0.0.1", port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (given.has(port)) continue;
    if (await bindable(port)) {
      given.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free port found between ${LOW} and ${HIGH}`);
}
