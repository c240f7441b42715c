// Where Redis is (REDIS_URL, or REDIS_SENTINELS with REDIS_SENTINEL_NAME and their passwords) and what an
// acknowledged write waits for (REDIS_MIN_REPLICAS, REDIS_REPLICA_WAIT_MS): validated at start, each error
// naming its variable; and what the connection is opened with.
import assert from "node:assert/strict";
import { test } from "node:test";
import { redisTarget } from "../../src/adapters/redis/client.js";
import { ConfigError, loadConfig } from "../../src/config.js";

const base = { XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef", SMS_PROVIDER: "sandbox" };
const sentinels = { REDIS_SENTINELS: "10.0.0.5:26379, 10.0.0.6:26379,sentinel-3.internal:26380", REDIS_SENTINEL_NAME: "switchboard" };

const refused = (env: Record<string, string>, pattern: RegExp): void => {
  assert.throws(
    () => loadConfig({ ...base, ...env }),
    (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
  );
};

test("without REDIS_SENTINELS: REDIS_URL, no replica waited for", () => {
  const c = loadConfig(base);
  assert.deepEqual(redisTarget(c), { url: "redis://127.0.0.1:6379" });
  assert.equal(c.REDIS_MIN_REPLICAS, 0);
  assert.equal(c.REDIS_REPLICA_WAIT_MS, 500);
});

test("REDIS_SENTINELS and REDIS_SENTINEL_NAME select Sentinel mode: each host:port, trimmed, and the passwords", () => {
  const c = loadConfig({ ...base, ...sentinels, REDIS_PASSWORD: "data-pw", REDIS_SENTINEL_PASSWORD: "sentinel-pw", REDIS_MIN_REPLICAS: "1", REDIS_REPLICA_WAIT_MS: "250" });
  assert.deepEqual(redisTarget(c), {
    sentinels: [
      { host: "10.0.0.5", port: 26379 },
      { host: "10.0.0.6", port: 26379 },
      { host: "sentinel-3.internal", port: 26380 },
    ],
    name: "switchboard",
    password: "data-pw",
    sentinelPassword: "sentinel-pw",
  });
  assert.equal(c.REDIS_MIN_REPLICAS, 1);
  assert.equal(c.REDIS_REPLICA_WAIT_MS, 250);
});

test("one of REDIS_SENTINELS and REDIS_SENTINEL_NAME without the other names the missing one", () => {
  refused({ REDIS_SENTINELS: sentinels.REDIS_SENTINELS }, /REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS/);
  refused({ REDIS_SENTINEL_NAME: "switchboard" }, /REDIS_SENTINELS: is required with REDIS_SENTINEL_NAME/);
});

test("a Sentinel address must be host:port with a port from 1 to 65535", () => {
  for (const bad of ["10.0.0.5", "10.0.0.5:", ":26379", "10.0.0.5:26379:1", "10.0.0.5:abc", "a b:26379", ","]) {
    refused({ ...sentinels, REDIS_SENTINELS: bad }, /REDIS_SENTINELS: /);
  }
  refused({ ...sentinels, REDIS_SENTINELS: "10.0.0.5:0" }, /REDIS_SENTINELS: '10\.0\.0\.5:0' has no valid port/);
  refused({ ...sentinels, REDIS_SENTINELS: "10.0.0.5:26379,10.0.0.6:70000" }, /REDIS_SENTINELS: '10\.0\.0\.6:70000' has no valid port/);
});

test("REDIS_SENTINEL_NAME is a plain name", () => {
  refused({ ...sentinels, REDIS_SENTINEL_NAME: "my master" }, /REDIS_SENTINEL_NAME: /);
});

test("the passwords belong to Sentinel mode: with REDIS_URL the password goes in the URL", () => {
  refused({ REDIS_PASSWORD: "pw" }, /REDIS_PASSWORD: is used only with REDIS_SENTINELS .*redis:\/\/:password@host:port/);
  refused({ REDIS_SENTINEL_PASSWORD: "pw" }, /REDIS_SENTINEL_PASSWORD: is used only with REDIS_SENTINELS/);
});

test("REDIS_MIN_REPLICAS and REDIS_REPLICA_WAIT_MS are bounded", () => {
  refused({ REDIS_MIN_REPLICAS: "-1" }, /REDIS_MIN_REPLICAS: /);
  refused({ REDIS_MIN_REPLICAS: "17" }, /REDIS_MIN_REPLICAS: /);
  refused({ REDIS_MIN_REPLICAS: "one" }, /REDIS_MIN_REPLICAS: /);
  refused({ REDIS_REPLICA_WAIT_MS: "5" }, /REDIS_REPLICA_WAIT_MS: /);
  refused({ REDIS_REPLICA_WAIT_MS: "20000" }, /REDIS_REPLICA_WAIT_MS: /);
});
