// Where a V8 CPU profile (node --cpu-prof) spends its time: self time by function and by package,
// and total (inclusive) time of the heaviest frames. Also writes the folded stacks next to the
// profile (<file>.folded), the input of flame graph tools (flamegraph.pl, speedscope, inferno).
//   npx tsx bench/profile-summary.ts bench/results/profiles/CPU.*.cpuprofile
import { readFileSync, writeFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (!url) return "(native)";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith("node:")) return "node:" + url.slice(5).split("/")[0];
  const d = /\/(dist\/src\/[^:]+)/.exec(url);
  return d ? d[1]! : url.replace(/^file:\/\//, "");
}

for (const file of process.argv.slice(2)) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // time per sample: the delta that follows it
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const label = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const selfBy = new Map<string, number>();
  const pkgBy = new Map<string, number>();
  const incl = new Map<string, number>();
  const folded = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    selfBy.set(label(n), (selfBy.get(label(n)) ?? 0) + us);
    const pkg = n.callFrame.url ? where(n.callFrame.url) : n.callFrame.functionName;
    pkgBy.set(pkg, (pkgBy.get(pkg) ?? 0) + us);
    const stack: string[] = [];
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      stack.push(l);
      if (!seen.has(l)) incl.set(l, (incl.get(l) ?? 0) + us);
      seen.add(l);
    }
    const key = stack.reverse().join(";");
    folded.set(key, (folded.get(key) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`)
      .join("\n");
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
  console.log(`\nself time by package/file\n${top(pkgBy, 25)}`);
  console.log(`\nself time by function\n${top(selfBy, 40)}`);
  console.log(`\ninclusive time\n${top(incl, 40)}`);
  writeFileSync(`${file}.folded`, [...folded].map(([k, v]) => `${k.replace(/ /g, "_")} ${Math.round(v)}`).join("\n") + "\n");
}
