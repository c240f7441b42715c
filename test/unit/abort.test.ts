// follow(): a signal that follows others until released, and leaves nothing on them afterwards.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { follow, timedOut } from "../../src/core/util/abort.js";

test("aborted with the reason of the first source that aborts", () => {
  const stop = new AbortController();
  const gone = new AbortController();
  const f = follow([stop.signal, gone.signal]);
  assert.equal(f.signal.aborted, false);
  gone.abort("left the stream");
  assert.equal(f.signal.aborted, true);
  assert.equal(f.signal.reason, "left the stream");
  assert.equal(getEventListeners(stop.signal, "abort").length, 0, "the other source is let go too");
});

test("a source aborted already: aborted at once; an absent source is ignored", () => {
  const stop = new AbortController();
  stop.abort("stopping");
  const f = follow([undefined, stop.signal]);
  assert.equal(f.signal.aborted, true);
  assert.equal(f.signal.reason, "stopping");
  assert.equal(follow([undefined]).signal.aborted, false);
});

test("a deadline of its own: aborted as timed out, and told apart from a source's abort", async () => {
  const f = follow([new AbortController().signal], 20);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(f.signal.aborted, true);
  assert.equal(timedOut(f.signal), true);
  const stop = new AbortController();
  const g = follow([stop.signal], 10_000);
  stop.abort("stopping");
  assert.equal(timedOut(g.signal), false);
});

test("released: a long-lived source keeps nothing of 10,000 followers, and its abort no longer reaches them", () => {
  const stop = new AbortController(); // the gateway's stop signal lives as long as the process
  const followers = [];
  for (let i = 0; i < 10_000; i++) {
    const f = follow([stop.signal, new AbortController().signal], 60_000);
    f.release();
    followers.push(f.signal);
  }
  assert.equal(getEventListeners(stop.signal, "abort").length, 0);
  stop.abort("stopping");
  assert.ok(followers.every((s) => !s.aborted));
});

test("not released yet: the stop reaches every follower", () => {
  const stop = new AbortController();
  const followers = Array.from({ length: 100 }, () => follow([stop.signal]));
  assert.equal(getEventListeners(stop.signal, "abort").length, 100);
  stop.abort("stopping");
  assert.ok(followers.every((f) => f.signal.aborted && f.signal.reason === "stopping"));
  assert.equal(getEventListeners(stop.signal, "abort").length, 0);
});
