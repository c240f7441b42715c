// SECURITY.md stays true: every variable it names exists, every control of issue 6 is in it, and the
// source files it points to exist.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { CONFIG_VARIABLES } from "../../src/config.js";

const doc = readFileSync(new URL("../../SECURITY.md", import.meta.url), "utf8");

test("SECURITY.md names only real configuration variables, and every limit", () => {
  const named = new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]{3,})`/g)].map((m) => m[1]!));
  const known = new Set(Object.keys(CONFIG_VARIABLES));
  assert.deepEqual(
    [...named].filter((n) => !known.has(n)),
    [],
    "variables SECURITY.md names that the config does not have",
  );
  for (const v of [
    "ALLOWED_DOMAINS",
    "USER_MESSAGES_PER_MINUTE",
    "USER_SEGMENTS_PER_DAY",
    "ALLOWED_COUNTRIES",
    "BLOCKED_NUMBER_TYPES",
    "BREAKER_SEGMENTS_PER_HOUR",
    "WEBHOOK_IN_PER_MINUTE",
    "ADMIN_AUTH_FAILURES_PER_MINUTE",
    "HTTP_BODY_LIMIT",
    "MEDIA_MAX_BYTES",
    "MESSAGE_RETENTION",
    "DEDUPE_TTL",
    "SHORT_CODES",
    "TRUST_PROXY",
    "XMPP_MAX_STANZA_BYTES",
    "SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN",
  ]) {
    assert.ok(named.has(v), `SECURITY.md covers ${v}`);
  }
});

test("SECURITY.md has the threat model's parts and points at files that exist", () => {
  for (const heading of ["## Reporting a vulnerability", "## Assets", "## Trust boundaries", "## Threats and the controls that answer them", "## Out of scope"]) {
    assert.ok(doc.includes(heading), heading);
  }
  const paths = [...doc.matchAll(/`(src\/[^`]+)`/g)].map((m) => m[1]!);
  assert.ok(paths.length > 5);
  for (const p of paths) assert.ok(existsSync(new URL(`../../${p}`, import.meta.url)), `${p} exists`);
});
