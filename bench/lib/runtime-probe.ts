// The gateway's own view of its runtime during a flow, from its Prometheus metrics (prom-client's
// default metrics): time in GC, GC pauses of 10 ms or more, and the event loop's delay. Tail latency
// comes from here, not from throughput.

export interface RuntimeFigures {
  /** Share of the window spent in GC pauses (%). */
  gcPercent: number;
  /** GC pauses that took 10 ms or more. */
  gcPausesOver10ms: number;
  /** Event-loop delay over the window (ms). */
  loopDelay: { p99: number; max: number };
}

type Samples = Map<string, number>;

async function scrape(url: string, token: string): Promise<Samples> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  const out: Samples = new Map();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

const sum = (s: Samples, prefix: string, suffix: string): number => {
  let total = 0;
  for (const [k, v] of s) if (k.startsWith(prefix) && k.includes(suffix)) total += v;
  return total;
};

/** Starts a window (the event-loop histogram is reset by each scrape); `stop` gives its figures. */
export async function runtimeProbe(url: string, token: string): Promise<{ stop(): Promise<RuntimeFigures> }> {
  const before = await scrape(url, token);
  const t0 = performance.now();
  return {
    async stop() {
      const after = await scrape(url, token);
      const seconds = (performance.now() - t0) / 1000;
      const gc = "switchboard_nodejs_gc_duration_seconds";
      const delta = (name: string, suffix: string) => sum(after, name, suffix) - sum(before, name, suffix);
      const pauses = delta(`${gc}_count`, "");
      const quick = delta(`${gc}_bucket`, 'le="0.01"');
      return {
        gcPercent: (delta(`${gc}_sum`, "") / seconds) * 100,
        gcPausesOver10ms: Math.max(0, pauses - quick),
        loopDelay: { p99: (after.get("switchboard_nodejs_eventloop_lag_p99_seconds") ?? 0) * 1000, max: (after.get("switchboard_nodejs_eventloop_lag_max_seconds") ?? 0) * 1000 },
      };
    },
  };
}
