// The stack most SMS integration tests run against, started once per test file: a real Redis and XMPP
// server, the fake Twilio, and the gateway in-process pointed at all three, with users linked and their
// clients online.
import assert from "node:assert/strict";
import { startFakeTwilio, type FakeTwilio } from "../fakes/fake-twilio.js";
import { startGateway, type TestGateway } from "./gateway.js";
import { startRedis, type RedisServer } from "./redis.js";
import { connectClient, type TestClient } from "./xmpp-client.js";
import { startXmppServer, type XmppServer } from "./xmpp-server.js";

const COMPONENT_SECRET = "component-secret";

export interface StackUser {
  username: string;
  password: string;
  /** The client's resource (default: the client library's). */
  resource?: string;
  /** Linked to this number through the admin API before the client connects. */
  phone?: string;
}

export interface SmsStack {
  redis: RedisServer;
  server: XmppServer;
  twilio: FakeTwilio;
  gw: TestGateway;
  /** The gateway's environment, with `extra` on top: to start another gateway like it. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** The users' connected clients, by username. */
  clients: Record<string, TestClient>;
  /** Stops everything it started (clients, gateway, servers); safe after a failed start. */
  stop(): Promise<void>;
}

export async function startSmsStack(o: {
  domain: string;
  accountSid: string;
  authToken: string;
  publicUrl: string;
  users: StackUser[];
  /** Settings for this file's gateway beyond the connection ones. */
  env?: Record<string, string>;
}): Promise<SmsStack> {
  const started: { stop(): Promise<unknown> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
  };
  try {
    const [redis, server, twilio] = await Promise.all([
      startRedis(),
      startXmppServer({ componentDomain: o.domain, componentSecret: COMPONENT_SECRET, users: o.users.map(({ username, password }) => ({ username, password })) }),
      startFakeTwilio({ accounts: { [o.accountSid]: o.authToken } }),
    ]);
    started.push(redis, server, twilio);
    const env = (extra: Record<string, string> = {}) => ({
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: o.domain,
      XMPP_SECRET: COMPONENT_SECRET,
      REDIS_URL: redis.url,
      PUBLIC_URL: o.publicUrl,
      TWILIO_ACCOUNT_SID: o.accountSid,
      TWILIO_AUTH_TOKEN: o.authToken,
      TWILIO_API_URL: twilio.url,
      ...o.env,
      ...extra,
    });
    const gw = await startGateway(env());
    started.push(gw);
    await gw.waitOnline();
    for (const u of o.users) {
      if (u.phone) assert.equal((await gw.admin("PUT", `/api/v1/users/${u.username}@${server.domain}`, { phone: u.phone })).status, 201);
    }
    const connected = await Promise.all(o.users.map((u) => connectClient({ server, username: u.username, password: u.password, ...(u.resource ? { resource: u.resource } : {}) })));
    started.push(...connected);
    const clients = Object.fromEntries(o.users.map((u, i) => [u.username, connected[i]!]));
    return { redis, server, twilio, gw, env, clients, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
