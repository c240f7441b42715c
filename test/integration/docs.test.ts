// The API documentation (issue 7, item 4): OpenAPI 3.1 at /docs/json built from the zod schemas, a
// readable page at /docs, and every route documented (a route added without words fails here).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ROUTE_DOCS } from "../../src/http/docs.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { startRedis, type RedisServer } from "../support/redis.js";

interface Operation {
  summary?: string;
  tags?: string[];
  security?: unknown[];
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>; required?: string[] } }> };
  parameters?: { name: string; in: string }[];
  responses?: Record<string, unknown>;
}

let redis: RedisServer;
let gw: TestGateway;
let spec: { openapi: string; paths: Record<string, Record<string, Operation>> };

before(async () => {
  redis = await startRedis();
  // No XMPP server is needed to read the documentation; the sandbox provider registers every route.
  gw = await startGateway({ SMS_PROVIDER: "sandbox", XMPP_SERVICE: `xmpp://127.0.0.1:${await freePort()}`, XMPP_DOMAIN: "sms.localhost", XMPP_SECRET: "x", REDIS_URL: redis.url });
  const res = await gw.gateway.http.inject({ method: "GET", url: "/docs/json" });
  assert.equal(res.statusCode, 200);
  spec = res.json();
});

after(async () => {
  await gw?.stop();
  await redis?.stop();
});

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, "{$1}");

test("OpenAPI 3.1, and every route the gateway serves is documented", () => {
  assert.equal(spec.openapi, "3.1.0");
  const undocumented: string[] = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!op.summary || !op.tags?.length) undocumented.push(`${method.toUpperCase()} ${path}`);
    }
  }
  assert.deepEqual(undocumented, [], "routes without a ROUTE_DOCS entry in src/http/docs.ts");
  for (const key of Object.keys(ROUTE_DOCS)) {
    const [method, url] = key.split(" ") as [string, string];
    assert.ok(spec.paths[toOpenApiPath(url)]?.[method.toLowerCase()], `${key} is documented but not served`);
  }
});

test("schemas come from the zod validators: bodies, parameters and responses", () => {
  const put = spec.paths["/api/v1/users/{jid}"]!.put!;
  assert.ok(put.parameters?.some((p) => p.name === "jid" && p.in === "path"));
  const body = put.requestBody!.content["application/json"]!.schema;
  assert.ok(body.properties?.phone, "the phone field of the link body");
  assert.ok(put.responses?.["201"]);
  assert.ok(put.security?.length, "admin routes say they need the token");
  const sms = spec.paths["/twilio/sms"]!.post!;
  const form = Object.values(sms.requestBody!.content)[0]!.schema;
  for (const field of ["MessageSid", "From", "To"]) assert.ok(form.properties?.[field], `the Twilio webhook documents ${field}`);
  assert.ok(spec.paths["/api/v1/webhooks/{name}/messages"]!.post!.requestBody);
});

test("/docs is a readable page listing every route", async () => {
  const res = await gw.gateway.http.inject({ method: "GET", url: "/docs" });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers["content-type"]), /text\/html/);
  for (const key of Object.keys(ROUTE_DOCS)) {
    const [, url] = key.split(" ") as [string, string];
    assert.ok(res.body.includes(toOpenApiPath(url)), `${url} on the page`);
  }
  assert.ok(!/<script/i.test(res.body), "no scripts: nothing to load from elsewhere");
});
