import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";

import { listTemplates, render, templateVariables } from "../../deploy/templates/render.mjs";

const RENDER = fileURLToPath(new URL("../../deploy/templates/render.mjs", import.meta.url));
const VARS = { COMPONENT_PORT: 5347, COMPONENT_INTERFACE: "127.0.0.1", XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s3cret" };

test("the Prosody component section", () => {
  const out = render("prosody-component.cfg.lua.tmpl", VARS);
  assert.match(out, /^component_ports = \{ 5347 \}$/m);
  assert.match(out, /^component_interfaces = \{ "127\.0\.0\.1" \}$/m);
  assert.match(out, /^Component "sms\.example\.com"\n\s+component_secret = "s3cret"$/m);
  assert.doesNotMatch(out, /\{\{/);
});

test("the ejabberd listen entry", () => {
  const out = render("ejabberd-component.yml.tmpl", VARS);
  assert.match(out, /^ {2}-\n {4}port: 5347\n {4}ip: "127\.0\.0\.1"\n {4}module: ejabberd_service\n {4}hosts:\n {6}"sms\.example\.com":\n {8}password: "s3cret"$/m);
  assert.doesNotMatch(out, /\{\{/);
});

test("both component templates use the same four variables", () => {
  const components = ["ejabberd-component.yml.tmpl", "prosody-component.cfg.lua.tmpl"];
  for (const t of components) assert.ok(listTemplates().includes(t), t);
  for (const t of components) {
    assert.deepEqual([...templateVariables(t)].sort(), ["COMPONENT_INTERFACE", "COMPONENT_PORT", "XMPP_DOMAIN", "XMPP_SECRET"], t);
  }
});

test("a missing variable is an error naming it (and every other missing one)", () => {
  assert.throws(
    () => render("prosody-component.cfg.lua.tmpl", { ...VARS, XMPP_SECRET: undefined }),
    (err: unknown) => err instanceof Error && /missing variable XMPP_SECRET$/.test(err.message) && err.message.includes("prosody-component.cfg.lua.tmpl"),
  );
  assert.throws(() => render("ejabberd-component.yml.tmpl", { COMPONENT_PORT: 1 }), /missing variables XMPP_DOMAIN, COMPONENT_INTERFACE, XMPP_SECRET/);
});

test("unknown or path-like template names are refused", () => {
  assert.throws(() => render("nope.tmpl", VARS), /no template "nope\.tmpl"/);
  assert.throws(() => render("../templates/prosody-component.cfg.lua.tmpl", VARS), /must be a file name/);
});

test("CLI: prints the rendered template; a missing variable exits 1 naming it", async () => {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [RENDER, "prosody-component.cfg.lua.tmpl", "COMPONENT_PORT=5347", "COMPONENT_INTERFACE=127.0.0.1", "XMPP_DOMAIN=sms.example.com", "XMPP_SECRET=a=b"]);
  assert.equal(stdout, render("prosody-component.cfg.lua.tmpl", { ...VARS, XMPP_SECRET: "a=b" }));
  await assert.rejects(run(process.execPath, [RENDER, "ejabberd-component.yml.tmpl", "COMPONENT_PORT=1"]), (err: unknown) => {
    const e = err as { code?: number; stderr?: string };
    return e.code === 1 && /missing variables XMPP_DOMAIN, COMPONENT_INTERFACE, XMPP_SECRET/.test(e.stderr ?? "");
  });
});
