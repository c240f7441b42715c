// The Grafana dashboard queries only metrics the gateway really exports.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createMetrics } from "../../src/metrics.js";

interface Panel {
  title: string;
  targets: { expr: string }[];
}

test("every metric in deploy/grafana/switchboard-dashboard.json is exported by the gateway", async () => {
  const dash = JSON.parse(readFileSync(new URL("../../deploy/grafana/switchboard-dashboard.json", import.meta.url), "utf8")) as { panels: Panel[] };
  const exported = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
  const used = new Set<string>();
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, `${p.title} has a query`);
    for (const t of p.targets) for (const m of t.expr.matchAll(/\b(switchboard_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=[{[ )]|$)/g)) used.add(m[1]!);
  }
  assert.ok(used.size >= 10, `the dashboard uses ${used.size} metrics`);
  for (const name of used) assert.ok(exported.has(name), `${name} is exported`);
});
