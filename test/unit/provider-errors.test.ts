import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyProviderFailure, describeProviderCode, mapProviderError, mapProviderFailure } from "../../src/core/policy/provider-errors.js";

test("A5 table: sync and async codes map to RFC 6120 conditions", () => {
  const cases: [number, string, string][] = [
    [21211, "jid-malformed", "modify"],
    [21408, "not-allowed", "cancel"],
    [21610, "forbidden", "auth"],
    [21614, "not-acceptable", "modify"],
    [21617, "not-acceptable", "modify"],
    [21623, "not-acceptable", "modify"],
    [21611, "resource-constraint", "wait"],
    [30001, "resource-constraint", "wait"],
    [30003, "recipient-unavailable", "wait"],
    [30004, "forbidden", "auth"],
    [30005, "item-not-found", "cancel"],
    [30006, "not-acceptable", "cancel"],
    [30007, "policy-violation", "modify"],
    [30036, "remote-server-timeout", "wait"],
    [20429, "resource-constraint", "wait"],
  ];
  for (const [code, condition, type] of cases) {
    const e = mapProviderError({ code });
    assert.equal(e.condition, condition, `condition for ${code}`);
    assert.equal(e.type, type, `type for ${code}`);
    assert.ok(e.text.startsWith(`Twilio ${code}: `), e.text);
  }
});

test("texts carry the code, the meaning and the number when known", () => {
  assert.equal(mapProviderError({ code: 21211, httpStatus: 400 }, { to: "+1555" }).text, "Twilio 21211: '+1555' is not a valid phone number");
  assert.match(mapProviderError({ code: 21610 }).text, /must text START/);
  assert.match(describeProviderCode(30003, { to: "+15552223333" }) ?? "", /'\+15552223333' is unreachable/);
  assert.equal(describeProviderCode(99999), undefined);
});

test("unknown codes fall back on the HTTP status and the provider's message", () => {
  assert.deepEqual(mapProviderError({ code: 21999, httpStatus: 400, message: "Something odd" }), {
    condition: "bad-request",
    type: "modify",
    text: "Twilio 21999: Something odd",
  });
  assert.equal(mapProviderError({ httpStatus: 429 }).condition, "resource-constraint");
  assert.deepEqual([mapProviderError({ httpStatus: 503 }).condition, mapProviderError({ httpStatus: 503 }).type], ["remote-server-timeout", "wait"]);
  const e500 = mapProviderError({ code: 20500, httpStatus: 500, message: "An internal server error has occurred" });
  assert.deepEqual([e500.condition, e500.type], ["undefined-condition", "cancel"]);
  assert.equal(e500.text, "Twilio 20500: An internal server error has occurred");
  assert.equal(mapProviderError({ code: 20003, httpStatus: 401 }).condition, "internal-server-error");
  assert.equal(mapProviderError({ httpStatus: 401 }).condition, "internal-server-error");
  assert.equal(mapProviderError({ code: 30099 }).condition, "undefined-condition");
});

test("classification: only certainly-unprocessed answers are retried", () => {
  assert.equal(classifyProviderFailure({ type: "http", status: 429 }).kind, "retry");
  assert.equal(classifyProviderFailure({ type: "http", status: 400, code: 20429 }).kind, "retry");
  assert.equal(classifyProviderFailure({ type: "http", status: 503 }).kind, "retry");
  assert.equal(classifyProviderFailure({ type: "http", status: 500, code: 20500 }).kind, "ambiguous");
  assert.equal(classifyProviderFailure({ type: "http", status: 502 }).kind, "ambiguous");
  assert.equal(classifyProviderFailure({ type: "http", status: 504 }).kind, "ambiguous");
  assert.equal(classifyProviderFailure({ type: "http", status: 401, code: 20003 }).kind, "permanent");
  assert.equal(classifyProviderFailure({ type: "transport", phase: "not-sent" }).kind, "retry");
  assert.equal(classifyProviderFailure({ type: "transport", phase: "maybe-sent" }).kind, "ambiguous");

  assert.deepEqual(classifyProviderFailure({ type: "http", status: 400, code: 21211, message: "The 'To' number +1555 is not a valid phone number." }), {
    kind: "permanent",
    code: 21211,
    httpStatus: 400,
    message: "The 'To' number +1555 is not a valid phone number.",
  });
  assert.equal(classifyProviderFailure({ type: "http", status: 500 }).message, "HTTP 500 from Twilio");
});

test("mapProviderFailure: HTTP failures by code, transport failures by kind", () => {
  const f = classifyProviderFailure({ type: "http", status: 400, code: 21211, message: "x" });
  assert.equal(mapProviderFailure(f, { to: "+1555" }).text, "Twilio 21211: '+1555' is not a valid phone number");

  const refused = mapProviderFailure(classifyProviderFailure({ type: "transport", phase: "not-sent", message: "ECONNREFUSED" }));
  assert.deepEqual([refused.condition, refused.type], ["remote-server-timeout", "wait"]);
  assert.match(refused.text, /could not be reached/);

  const timedOut = mapProviderFailure(classifyProviderFailure({ type: "transport", phase: "maybe-sent", message: "headers timeout" }));
  assert.deepEqual([timedOut.condition, timedOut.type], ["remote-server-timeout", "cancel"]);
  assert.match(timedOut.text, /may or may not have been sent/);

  assert.equal(mapProviderFailure({ kind: "retry", httpStatus: 429, code: 20429, message: "Too Many Requests" }).condition, "resource-constraint");
});
