// Sentinel mode with passwords (REDIS_PASSWORD for the primary and replica, REDIS_SENTINEL_PASSWORD for the
// Sentinels), on real servers: the stores' connection works and follows a failover with them, and
// `switchboard doctor`'s redis check says which password is wrong.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openRedis, redisTarget, type RedisSettings } from "../../src/adapters/redis/client.js";
import { checkRedis } from "../../src/cli/doctor/redis-check.js";
import { startSentinelTopology, type SentinelTopology } from "../support/redis-sentinel.js";
import { waitUntil } from "../support/wait.js";

const PASSWORD = "data-nodes-pw";
const SENTINEL_PASSWORD = "sentinels-pw";
let topo: SentinelTopology;

before(async () => {
  topo = await startSentinelTopology({ password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
});
after(async () => {
  await topo?.stop();
});

const settings = (over: Partial<RedisSettings> = {}): RedisSettings & { REDIS_MIN_REPLICAS: number } => ({
  REDIS_URL: "redis://127.0.0.1:1",
  REDIS_SENTINELS: topo.sentinels.split(","),
  REDIS_SENTINEL_NAME: topo.name,
  REDIS_PASSWORD: PASSWORD,
  REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
  REDIS_MIN_REPLICAS: 1,
  ...over,
});

test("with both passwords the connection reaches the primary, and follows it through a failover", async () => {
  const errors: string[] = [];
  const conn = await openRedis(redisTarget(settings()), { error: (e) => errors.push(e.message) }, { commandTimeoutMs: 2000 });
  try {
    assert.equal(conn.mode, "sentinel");
    const first = await topo.primary();
    assert.deepEqual(conn.primary(), { host: "127.0.0.1", port: first.port });
    await conn.redis.set("sb:test:auth", "before");
    assert.equal(await conn.redis.wait(1, 1000), 1, "the replica has it");

    const { to } = await topo.failover();
    await waitUntil(() => conn.primary()?.port === to.port, { timeoutMs: 15_000, what: `the connection on the new primary ${to.port}` });
    assert.equal(await conn.redis.get("sb:test:auth"), "before", "what the replica confirmed survived");
    await conn.redis.set("sb:test:auth", "after");
    assert.equal(await conn.redis.get("sb:test:auth"), "after");
    assert.equal(
      errors.some((e) => /WRONGPASS|NOAUTH/.test(e)),
      false,
      errors.join("\n"),
    );
  } finally {
    await conn.close();
  }
});

test("doctor: the mode and the primary with the right passwords; a wrong one named by what Redis answers", async () => {
  const good = await checkRedis(settings(), 3000);
  await good.close();
  // AOF is on in the fixture; the replica may still be re-syncing after the failover above.
  assert.match(good.check.detail, /^Sentinel mode: the Sentinels .* name the primary 127\.0\.0\.1:\d+, appendonly yes/);

  const wrongData = await checkRedis(settings({ REDIS_PASSWORD: "nope" }), 2000);
  await wrongData.close();
  assert.equal(wrongData.check.ok, false);
  assert.match(wrongData.check.detail, /Redis does not answer at the Sentinels .*(WRONGPASS|invalid username-password)/);
  assert.match(wrongData.check.fix ?? "", /REDIS_PASSWORD/);

  const wrongSentinel = await checkRedis(settings({ REDIS_SENTINEL_PASSWORD: "nope" }), 2000);
  await wrongSentinel.close();
  assert.equal(wrongSentinel.check.ok, false);
  assert.match(wrongSentinel.check.detail, /WRONGPASS|invalid username-password/);
  assert.match(wrongSentinel.check.fix ?? "", /REDIS_SENTINEL_PASSWORD/);
});
