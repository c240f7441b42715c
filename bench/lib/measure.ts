// What the benchmark records: latencies (percentiles) and a process's CPU and memory from /proc.
import { readdirSync, readFileSync } from "node:fs";

/** Latencies in ms; percentiles over every sample (a run holds at most a few hundred thousand). */
export class Latencies {
  private samples = new Float64Array(1 << 16);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** p in [0, 100]; NaN without samples. */
  percentiles(...ps: number[]): number[] {
    if (this.n === 0) return ps.map(() => NaN);
    const sorted = this.samples.slice(0, this.n).sort();
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!);
  }
}

const TICKS_PER_S = 100; // USER_HZ on Linux

function procStat(pid: number): { cpuTicks: number; rssMb: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command (which may hold spaces) in parentheses
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpuTicks: utime + stime, rssMb: rss ? Number(rss[1]) / 1024 : NaN };
  } catch {
    return undefined;
  }
}

export function rssMb(pid: number): number {
  return procStat(pid)?.rssMb ?? NaN;
}

/** Samples a process every 100 ms: CPU over the window (% of one core) and its peak and mean RSS. */
export class ProcessSampler {
  private timer: NodeJS.Timeout | undefined;
  private startTicks = 0;
  private startAt = 0;
  private peak = 0;
  private rssSum = 0;
  private rssN = 0;

  constructor(readonly pid: number) {}

  start(): void {
    const s = procStat(this.pid);
    this.startTicks = s?.cpuTicks ?? 0;
    this.startAt = performance.now();
    this.peak = s?.rssMb ?? 0;
    this.rssSum = 0;
    this.rssN = 0;
    this.timer = setInterval(() => {
      const x = procStat(this.pid);
      if (!x) return;
      this.peak = Math.max(this.peak, x.rssMb);
      this.rssSum += x.rssMb;
      this.rssN++;
    }, 100);
  }

  stop(): { cpuPercent: number; peakRssMb: number; meanRssMb: number } {
    clearInterval(this.timer);
    const s = procStat(this.pid);
    const seconds = (performance.now() - this.startAt) / 1000;
    const cpu = s ? ((s.cpuTicks - this.startTicks) / TICKS_PER_S / seconds) * 100 : NaN;
    if (s) this.peak = Math.max(this.peak, s.rssMb);
    return { cpuPercent: cpu, peakRssMb: this.peak, meanRssMb: this.rssN > 0 ? this.rssSum / this.rssN : this.peak };
  }
}

/**
 * The pid of the process whose command line contains `needle` (a server started with its temp dir);
 * of several (a wrapper script and the server it runs, as ejabberdctl and beam.smp), the largest.
 */
export function findPid(needle: string): number | undefined {
  let best: { pid: number; rss: number } | undefined;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ");
      if (!cmd.includes(needle)) continue;
      const rss = rssMb(Number(d));
      if (!best || rss > best.rss) best = { pid: Number(d), rss };
    } catch {
      // gone meanwhile
    }
  }
  return best?.pid;
}
