// What every DeliveryQueues adapter must do (core/delivery/queues.ts), as cases run against each one:
// the in-memory queues in a unit test, the Redis streams in an integration test. The engine's unit tests
// run on the memory adapter; this keeps it honest to the real one.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DeliveryQueues } from "../../../src/core/delivery/queues.js";

export interface QueuesUnderTest {
  queues: DeliveryQueues;
  /** Makes a message record exist (addJob requires one). */
  createRecord(messageId: string): Promise<void>;
}

/** Registers the contract's tests; `fresh` gives an empty store per test. */
export function queuesContract(name: string, fresh: () => Promise<QueuesUnderTest>): void {
  const datum = (n: number) => JSON.stringify({ n });
  /** One read by `consumer` with a reader of its own, closed again (a reader may hold a connection). */
  const readOnce = async (queues: DeliveryQueues, queue: "to-xmpp" | "outbound", partition: number, consumer: string, cursor: string) => {
    const reader = queues.reader(queue, partition, consumer, 50);
    try {
      return await reader.read(cursor, 10, 50);
    } finally {
      reader.close();
    }
  };

  test(`${name}: entries are read in order, pending for their reader until acknowledged, then gone`, async () => {
    const { queues } = await fresh();
    for (let i = 0; i < 3; i++) assert.equal(await queues.add("to-xmpp", 1, datum(i)), true);
    const reader = queues.reader("to-xmpp", 1, "c1", 50);
    const got = await reader.read(">", 10, 50);
    assert.deepEqual(
      got.map((e) => e.data),
      [datum(0), datum(1), datum(2)],
    );
    assert.deepEqual(await reader.read(">", 10, 20), [], "nothing new");
    assert.deepEqual(
      (await reader.read("0", 10, 0)).map((e) => e.id),
      got.map((e) => e.id),
      "its own pending entries, from 0",
    );
    assert.deepEqual(
      (await reader.read(got[0]!.id, 10, 0)).map((e) => e.id),
      got.slice(1).map((e) => e.id),
      "after an id",
    );
    assert.deepEqual(await readOnce(queues, "to-xmpp", 1, "c2", "0"), [], "another reader's pending entries are not mine");
    await queues.ack("to-xmpp", 1, [got[0]!.id]);
    assert.equal(await queues.length("to-xmpp", 1), 2);
    assert.deepEqual(
      (await reader.read("0", 10, 0)).map((e) => e.id),
      got.slice(1).map((e) => e.id),
    );
    reader.close();
  });

  test(`${name}: a waiting read returns as soon as an entry arrives`, async () => {
    const { queues } = await fresh();
    const reader = queues.reader("outbound", 0, "c1", 2000);
    const started = Date.now();
    const reading = reader.read(">", 10, 2000);
    await new Promise((r) => setTimeout(r, 50));
    await queues.add("outbound", 0, datum(7));
    assert.deepEqual(
      (await reading).map((e) => e.data),
      [datum(7)],
    );
    assert.ok(Date.now() - started < 1500);
    reader.close();
  });

  test(`${name}: stillPending says which entries are still in their queue (and takes them); claimIdle takes idle ones`, async () => {
    const { queues } = await fresh();
    await queues.add("outbound", 0, datum(1));
    await queues.add("outbound", 0, datum(2));
    const [a, b] = await readOnce(queues, "outbound", 0, "c1", ">");
    await queues.ack("outbound", 0, [a!.id]);
    assert.deepEqual([...(await queues.stillPending("outbound", 0, "c2", [a!.id, b!.id]))], [b!.id]);
    assert.deepEqual(
      (await readOnce(queues, "outbound", 0, "c2", "0")).map((e) => e.id),
      [b!.id],
      "now c2's",
    );
    assert.equal(await queues.claimIdle("outbound", 0, "c3", 3_600_000, 10), 0, "not idle that long");
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(await queues.claimIdle("outbound", 0, "c3", 10, 10), 1);
    assert.deepEqual(
      (await readOnce(queues, "outbound", 0, "c3", "0")).map((e) => e.id),
      [b!.id],
    );
  });

  test(`${name}: idempotency keys, legacy keys and markers that are not our ids`, async () => {
    const { queues } = await fresh();
    const once = (key: string, itemId: string, extra: object = {}) => ({ key, itemId, ttlS: 60, ...extra });
    assert.equal(await queues.add("to-xmpp", 0, datum(1), once("k1", "id-1")), true);
    assert.equal(await queues.add("to-xmpp", 0, datum(1), once("k1", "id-2")), false);
    assert.equal(await queues.marker("k1"), "id-1");
    assert.equal(await queues.add("to-xmpp", 0, datum(2), once("k2", "id-3", { legacy: "k1" })), false, "seen under its legacy key");
    assert.equal(await queues.add("to-xmpp", 0, datum(3), once("k3", "not-a-ulid")), true);
    const ulid = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    assert.equal(await queues.add("to-xmpp", 0, datum(4), once("k3", ulid, { ownIdsOnly: true })), true, "a marker that is not our id is replaced");
    assert.equal(await queues.add("to-xmpp", 0, datum(5), once("k3", "01JABCDEFGHJKMNPQRSTVWXYZ1", { ownIdsOnly: true })), false);
    assert.equal(await queues.marker("k3"), ulid);
    assert.equal(await queues.length("to-xmpp", 0), 3);
  });

  test(`${name}: a job is added only with its message record, once per key`, async () => {
    const { queues, createRecord } = await fresh();
    assert.equal(await queues.addJob(0, datum(1), "m1"), "no-record");
    await createRecord("m1");
    assert.equal(await queues.addJob(0, datum(1), "m1", { key: "stanza:x", itemId: "m1", ttlS: 60 }), "stored");
    assert.equal(await queues.addJob(0, datum(1), "m1", { key: "stanza:x", itemId: "m1", ttlS: 60 }), "seen");
    assert.equal(await queues.marker("stanza:x"), "m1");
    assert.equal(await queues.length("outbound", 0), 1);
  });

  test(`${name}: dead letters: moved once, listed newest first, requeued to their partition, trimmed by age`, async () => {
    const { queues } = await fresh();
    await queues.add("to-xmpp", 3, datum(1));
    await queues.add("to-xmpp", 3, datum(2));
    const [a, b] = await queues.scan("to-xmpp", 3, undefined, 10);
    assert.deepEqual(
      (await queues.scan("to-xmpp", 3, a!.id, 10)).map((e) => e.id),
      [b!.id],
    );
    assert.equal(await queues.moveToDead("to-xmpp", 3, a!, "first", 1000), true);
    assert.equal(await queues.moveToDead("to-xmpp", 3, a!, "again", 1000), false, "already left its queue");
    assert.equal(await queues.moveToDead("to-xmpp", 3, b!, "second", 2000), true);
    assert.equal(await queues.length("to-xmpp", 3), 0);
    const rows = await queues.deadLetters(10);
    assert.deepEqual(
      rows.map((r) => [r.reason, r.queue, r.at, r.data]),
      [
        ["second", "to-xmpp", 2000, datum(2)],
        ["first", "to-xmpp", 1000, datum(1)],
      ],
    );
    assert.equal(await queues.deadLetterCount(), 2);
    assert.equal((await queues.deadLetter(rows[1]!.id))?.reason, "first");
    assert.equal(await queues.requeue(rows[1]!.id), true);
    assert.equal(await queues.requeue(rows[1]!.id), false);
    assert.deepEqual(
      (await queues.scan("to-xmpp", 3, undefined, 10)).map((e) => e.data),
      [datum(1)],
      "back in partition 3",
    );
    assert.equal(await queues.trimDeadLetters(0), 0);
    assert.equal(await queues.trimDeadLetters(Date.now() + 1000), 1);
    assert.equal(await queues.deadLetterCount(), 0);
  });

  test(`${name}: depth and the oldest entry over partitions`, async () => {
    const { queues } = await fresh();
    assert.deepEqual(await queues.depth("outbound", 4), { depth: 0 });
    const before = Date.now();
    await queues.add("to-xmpp", 0, datum(1));
    await queues.add("to-xmpp", 2, datum(2));
    const d = await queues.depth("to-xmpp", 4);
    assert.equal(d.depth, 2);
    assert.ok(d.oldestAt !== undefined && d.oldestAt >= before - 1000 && d.oldestAt <= Date.now());
  });
}
