// Lua scripts by SHA (src/adapters/redis/scripts.ts) on a real Redis: the first call and a call after
// the script cache was flushed (a Redis restart) both work; a script's own error still surfaces.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runScript } from "../../src/adapters/redis/scripts.js";
import { redisClientForFile } from "../support/redis.js";

const r = redisClientForFile();

const INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

test("runs a script Redis has not seen, then by its SHA, and again after SCRIPT FLUSH", async () => {
  assert.equal(await runScript(r(), INCR_BY, { keys: ["n"], arguments: ["2"] }), 2);
  assert.equal(await runScript(r(), INCR_BY, { keys: ["n"], arguments: ["3"] }), 5);
  await r().scriptFlush();
  assert.equal(await runScript(r(), INCR_BY, { keys: ["n"], arguments: ["1"] }), 6);
});

test("an error raised by the script itself is not mistaken for NOSCRIPT", async () => {
  await assert.rejects(runScript(r(), "return redis.error_reply('BOOM on purpose')", { keys: [], arguments: [] }), /BOOM on purpose/);
});
