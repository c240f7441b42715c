// Message ids (ULIDs drawn from a pooled random buffer): well formed, unique, sortable by time.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { decodeTime } from "ulid";
import { newMessageId } from "../../src/core/model/message.js";

const CROCKFORD_ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

test("message ids: 26 Crockford base32 characters, unique, in the order they were made", () => {
  const ids: string[] = [];
  for (let i = 0; i < 10_000; i++) ids.push(newMessageId());
  for (const id of ids) assert.match(id, CROCKFORD_ULID);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, "monotonic: each id sorts after the one before");
});

test("message ids: one made later sorts after one made earlier", async () => {
  const before = Date.now();
  const first = newMessageId();
  await sleep(2);
  const second = newMessageId();
  assert.ok(second > first, `${second} > ${first}`);
  assert.ok(decodeTime(first) >= before && decodeTime(second) <= Date.now());
  assert.ok(decodeTime(second) > decodeTime(first));
});

test("message ids: the random part is new in every millisecond, past a refill of the random pool", async () => {
  // Each new millisecond draws 16 bytes from the 4096-byte pool: 300 of them use it up once.
  const randoms = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const id = newMessageId();
    assert.match(id, CROCKFORD_ULID);
    randoms.add(id.slice(10));
    await sleep(1);
  }
  assert.equal(randoms.size, 300);
});
