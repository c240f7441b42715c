// Reconciliation's settings and the CLI's --since: RECONCILE_INTERVAL is 0 or at least 10 s, bad values
// named at start; --since takes a duration or an ISO date, anything else is a usage error saying so.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSince } from "../../src/cli/reconcile.js";
import { CliError, EXIT } from "../../src/cli/errors.js";
import { ConfigError, loadConfig } from "../../src/config.js";

const base = { XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef", SMS_PROVIDER: "sandbox" };

test("RECONCILE_INTERVAL: 300 s by default, 0 turns it off, too often or not a number is refused naming it", () => {
  assert.equal(loadConfig(base).RECONCILE_INTERVAL, 300);
  assert.equal(loadConfig(base).RECONCILE_LOOKBACK, 86_400);
  assert.equal(loadConfig({ ...base, RECONCILE_INTERVAL: "0" }).RECONCILE_INTERVAL, 0);
  assert.equal(loadConfig({ ...base, RECONCILE_INTERVAL: "10" }).RECONCILE_INTERVAL, 10);
  for (const [value, why] of [
    ["5", /RECONCILE_INTERVAL: must be 0 \(off\) or at least 10 seconds/],
    ["-1", /RECONCILE_INTERVAL: /],
    ["often", /RECONCILE_INTERVAL: /],
    ["90000", /RECONCILE_INTERVAL: /],
  ] as const) {
    assert.throws(
      () => loadConfig({ ...base, RECONCILE_INTERVAL: value }),
      (err: unknown) => err instanceof ConfigError && why.test(err.message),
      value,
    );
  }
  assert.throws(
    () => loadConfig({ ...base, RECONCILE_LOOKBACK: "10" }),
    (err: unknown) => err instanceof ConfigError && /RECONCILE_LOOKBACK: /.test(err.message),
  );
});

test("--since: durations back from now, ISO dates and times; anything else is a usage error", () => {
  const now = Date.UTC(2026, 11, 8, 12);
  assert.equal(parseSince("6h", now), now - 6 * 3_600_000);
  assert.equal(parseSince("90m", now), now - 90 * 60_000);
  assert.equal(parseSince("1d12h", now), now - 36 * 3_600_000);
  assert.equal(parseSince("45s", now), now - 45_000);
  assert.equal(parseSince("2026-12-08", now), Date.UTC(2026, 11, 8));
  assert.equal(parseSince("2026-12-08T09:30:00Z", now), Date.UTC(2026, 11, 8, 9, 30));
  assert.equal(parseSince("2026-12-08T09:30+02:00", now), Date.UTC(2026, 11, 8, 7, 30));
  for (const bad of ["yesterday", "6", "0h", "2026-13-45", "-6h", ""]) {
    assert.throws(
      () => parseSince(bad, now),
      (err: unknown) => err instanceof CliError && err.exitCode === EXIT.usage && /--since/.test(err.message),
      bad,
    );
  }
});
