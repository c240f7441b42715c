// Back-pressure on the XMPP intake (src/xmpp/intake.ts): reading stops past `high` handlers in
// progress and resumes at `low`, on the socket that was paused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createIntakeGate } from "../../src/xmpp/intake.js";

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

test("reading pauses at high and resumes at low, failures count as settled", async () => {
  const calls: string[] = [];
  const socket = { pause: () => calls.push("pause"), resume: () => calls.push("resume") };
  const gate = createIntakeGate(() => socket, { high: 3, low: 1 });
  const work = [deferred(), deferred(), deferred(), deferred()];
  void gate.track(work[0]!.promise);
  void gate.track(work[1]!.promise);
  assert.deepEqual(calls, []);
  void gate.track(work[2]!.promise);
  assert.deepEqual(calls, ["pause"]);
  assert.deepEqual(gate.state(), { inProgress: 3, paused: true, pauses: 1 });
  void gate.track(work[3]!.promise); // arrived in the same read: counted, no second pause
  assert.deepEqual(calls, ["pause"]);
  work[0]!.resolve();
  work[1]!.reject(new Error("redis away"));
  await tick();
  assert.deepEqual(calls, ["pause"], "2 still in progress, more than low");
  work[2]!.resolve();
  await tick();
  assert.deepEqual(calls, ["pause", "resume"], "down to low (1): reading again");
  assert.equal(gate.state().paused, false);
  work[3]!.resolve();
  await tick();
  assert.deepEqual(gate.state(), { inProgress: 0, paused: false, pauses: 1 });
});

test("without a socket (offline) nothing is paused", async () => {
  const gate = createIntakeGate(() => null, { high: 1, low: 0 });
  await gate.track(Promise.resolve());
  assert.deepEqual(gate.state(), { inProgress: 0, paused: false, pauses: 0 });
});
