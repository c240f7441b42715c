import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CONFIG_VARIABLES, ConfigError, loadConfig } from "../../src/config.js";

/** The required variables, and no SMS provider chosen. */
const bare = { XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef" };
/** A configuration that starts: the sandbox, chosen. */
const base = { ...bare, SMS_PROVIDER: "sandbox" };
const twilio = { ...bare, TWILIO_ACCOUNT_SID: `AC${"a".repeat(32)}`, TWILIO_AUTH_TOKEN: "t", PUBLIC_URL: "https://gw.example.com" };

test(".env.example lists exactly the schema's variables, each with a comment", () => {
  const text = readFileSync(new URL("../../.env.example", import.meta.url), "utf8");
  const lines = text.split("\n");
  const names = lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split("=")[0]);
  assert.deepEqual([...names].sort(), Object.keys(CONFIG_VARIABLES).sort());
  for (const name of names) {
    const i = lines.findIndex((l) => l.startsWith(`${name}=`));
    assert.match(lines[i - 1] ?? "", /^# \S/, `${name} has a comment line above it`);
  }
});

test("defaults: the chosen sandbox gets PUBLIC_URL from the listener", () => {
  const c = loadConfig(base);
  assert.equal(c.SMS_PROVIDER, "sandbox");
  assert.equal(c.PUBLIC_URL, "http://127.0.0.1:8080");
  assert.equal(c.XMPP_RECONNECT_MAX_MS >= 60_000, true);
  assert.equal(c.DEFAULT_REGION, "US");
});

test("twilio is chosen when the account SID is set", () => {
  const c = loadConfig({ ...bare, TWILIO_ACCOUNT_SID: `AC${"a".repeat(32)}`, TWILIO_AUTH_TOKEN: "t", PUBLIC_URL: "https://gw.example.com/sb/" });
  assert.equal(c.SMS_PROVIDER, "twilio");
  assert.equal(c.PUBLIC_URL, "https://gw.example.com/sb", "trailing slash removed");
});

test("no provider configured is a start-up error naming SMS_PROVIDER and both choices", () => {
  const explains = (err: unknown): boolean => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /SMS_PROVIDER: no SMS provider is configured/);
    assert.match(err.message, /set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN \(and PUBLIC_URL\) to send real SMS with Twilio/);
    assert.match(err.message, /or SMS_PROVIDER=sandbox to try the gateway with no SMS leaving it/);
    return true;
  };
  assert.throws(() => loadConfig(bare), explains);
  assert.throws(() => loadConfig({ ...bare, SMS_PROVIDER: "" }), explains, "empty counts as unset");
  // Listed with the other missing variables, so one start names everything to set.
  assert.throws(
    () => loadConfig({ ADMIN_TOKEN: "0123456789abcdef" }),
    (err: unknown) => explains(err) && /XMPP_DOMAIN: is required.*XMPP_SECRET: is required/.test((err as Error).message),
  );
  // Either choice starts; Twilio credentials imply twilio.
  assert.equal(loadConfig(base).SMS_PROVIDER, "sandbox");
  assert.equal(loadConfig(twilio).SMS_PROVIDER, "twilio");
  assert.equal(loadConfig({ ...twilio, SMS_PROVIDER: "twilio" }).SMS_PROVIDER, "twilio");
});

test("the sandbox refuses a non-loopback HTTP_HOST unless SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true", () => {
  for (const host of ["0.0.0.0", "::", "[::]", "192.168.1.10", "10.0.0.5", "203.0.113.7", "2001:db8::1", "sms.example.com"]) {
    assert.throws(
      () => loadConfig({ ...base, HTTP_HOST: host }),
      (err: unknown) => err instanceof ConfigError && /HTTP_HOST: .* is not a loopback address/.test(err.message) && /SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true/.test(err.message),
      host,
    );
    assert.equal(loadConfig({ ...base, HTTP_HOST: host, SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: "true" }).HTTP_HOST, host, `${host} with the unsafe switch`);
    assert.throws(() => loadConfig({ ...base, HTTP_HOST: host, SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: "false" }), ConfigError, `${host}, switch false`);
    // Twilio signs its webhooks: any listener is fine there.
    assert.equal(loadConfig({ ...twilio, HTTP_HOST: host }).HTTP_HOST, host, `${host} with Twilio`);
  }
  for (const host of ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]) {
    assert.equal(loadConfig({ ...base, HTTP_HOST: host }).HTTP_HOST, host, `${host} is loopback`);
  }
  assert.throws(() => loadConfig({ ...base, HTTP_HOST: "0.0.0.0", SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: "maybe" }), /SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN/);
});

test("errors name the bad variable", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef" }, /XMPP_DOMAIN: is required/],
    [{ ...base, ADMIN_TOKEN: undefined as unknown as string }, /ADMIN_TOKEN: is required/],
    [{ ...base, ADMIN_TOKEN: "short" }, /ADMIN_TOKEN: must be at least 16/],
    [{ ...base, HTTP_PORT: "http" }, /HTTP_PORT/],
    [{ ...base, XMPP_SERVICE: "tcp://x:5347" }, /XMPP_SERVICE: must look like xmpp:\/\/host:port/],
    [{ ...base, DEFAULT_REGION: "XX" }, /DEFAULT_REGION/],
    [{ ...bare, TWILIO_ACCOUNT_SID: `AC${"a".repeat(32)}` }, /TWILIO_AUTH_TOKEN: is required/],
    [{ ...bare, TWILIO_AUTH_TOKEN: "t" }, /TWILIO_ACCOUNT_SID: is required/],
    [{ ...bare, SMS_PROVIDER: "twilio" }, /TWILIO_ACCOUNT_SID: is required/],
    [{ ...bare, TWILIO_ACCOUNT_SID: `AC${"a".repeat(32)}`, TWILIO_AUTH_TOKEN: "t" }, /PUBLIC_URL: is required/],
    [{ ...bare, TWILIO_ACCOUNT_SID: "nope", TWILIO_AUTH_TOKEN: "t" }, /TWILIO_ACCOUNT_SID: must be AC/],
    [{ ...base, SECRETS_KEY: "c2hvcnQ=" }, /SECRETS_KEY: must be 32 random bytes/],
  ];
  for (const [env, re] of cases) {
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      `${JSON.stringify(env)} → ${re}`,
    );
  }
});

test("empty values fall back to defaults", () => {
  assert.equal(loadConfig({ ...base, HTTP_PORT: "", LOG_LEVEL: "" }).HTTP_PORT, 8080);
});

test("the configuration table (docs/operators/configuration.md) lists exactly the schema's variables", () => {
  const page = readFileSync(new URL("../../docs/operators/configuration.md", import.meta.url), "utf8");
  const start = page.indexOf("\n## Variables\n");
  assert.ok(start >= 0, 'docs/operators/configuration.md has a "## Variables" section');
  const end = page.indexOf("\n## ", start + 1);
  const section = page.slice(start, end === -1 ? undefined : end);
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...rows].sort(), Object.keys(CONFIG_VARIABLES).sort());
});

test("TRUST_PROXY: true and hop counts are refused, naming the variable and what to set instead", () => {
  const refused: [string, RegExp][] = [
    [
      "true",
      /^invalid configuration: TRUST_PROXY: true would let any client choose its own address with X-Forwarded-For \(and so escape the per-address limits\); set the addresses of the proxies in front of the gateway instead \(e\.g\. 10\.0\.0\.0\/8, or loopback/,
    ],
    ["yes", /TRUST_PROXY: true would let any client/],
    ["1", /TRUST_PROXY: a hop count \(1\) cannot tell a proxy from a client .*set the addresses of the proxies/],
    ["0.0.0.0/0", /TRUST_PROXY: '0\.0\.0\.0\/0' trusts every address/],
    ["::/0", /TRUST_PROXY: '::\/0' trusts every address/],
    ["::ffff:10.0.0.0/8", /TRUST_PROXY: .*IPv4-mapped range/],
    ["10.0.0.0/33", /TRUST_PROXY: '10\.0\.0\.0\/33' has no valid prefix length/],
    ["proxy.example.com", /TRUST_PROXY: 'proxy\.example\.com' is not an IP address or CIDR range/],
    ["10.1", /TRUST_PROXY: '10\.1' is not an IP address/],
  ];
  for (const [value, re] of refused) {
    assert.throws(
      () => loadConfig({ ...base, TRUST_PROXY: value }),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      `${value} → ${re}`,
    );
  }
  assert.equal(loadConfig(base).TRUST_PROXY, false);
  assert.equal(loadConfig({ ...base, TRUST_PROXY: "false" }).TRUST_PROXY, false);
  assert.equal(loadConfig({ ...base, TRUST_PROXY: "10.0.0.0/8, 192.168.1.10,fd00::/8" }).TRUST_PROXY, "10.0.0.0/8,192.168.1.10,fd00::/8");
  assert.equal(loadConfig({ ...base, TRUST_PROXY: "loopback,uniquelocal" }).TRUST_PROXY, "loopback,uniquelocal");
});

test("SHORT_CODES: deny by default, allow, or a list of 3–8 digit codes", () => {
  assert.equal(loadConfig(base).SHORT_CODES, "deny");
  assert.equal(loadConfig({ ...base, SHORT_CODES: "allow" }).SHORT_CODES, "allow");
  assert.deepEqual(loadConfig({ ...base, SHORT_CODES: "72975, 33733" }).SHORT_CODES, ["72975", "33733"]);
  for (const bad of ["12", "123456789", "deny,72975", "+72975", "yes"]) {
    assert.throws(
      () => loadConfig({ ...base, SHORT_CODES: bad }),
      (err: unknown) => err instanceof ConfigError && /SHORT_CODES: must be deny, allow, or a comma-separated list of short codes/.test(err.message),
      bad,
    );
  }
});
