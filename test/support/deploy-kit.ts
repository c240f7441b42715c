// The deploy kit's files (deploy/) as data, for the test that checks them statically
// (test/unit/deploy.test.ts) and the one that starts the compose example's Redis part from them
// (test/integration/deploy-redis.test.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DEPLOY = join(ROOT, "deploy");

/** parsed YAML: shapes are checked by the tests' assertions */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the assertions of the tests are the type check
export type Y = any;

/** Every document of a YAML file, with `<<` merge keys applied as docker compose applies them. */
export function parseYaml(file: string): Y[] {
  return parseAllDocuments(readFileSync(file, "utf8"), { merge: true }).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file} does not parse as YAML: ${d.errors.map(String).join("; ")}`);
    return d.toJS({ maxAliasCount: -1 }) as Y;
  });
}

export function composeFile(): Y {
  return parseYaml(join(DEPLOY, "docker-compose.yml"))[0];
}

/** One directive of a redis.conf (the kit's files use no quoting): its words and 1-based line number. */
export interface RedisDirective {
  line: number;
  words: string[];
}

export function parseRedisConf(text: string): RedisDirective[] {
  return text
    .split("\n")
    .map((raw, i) => ({ line: i + 1, words: raw.trim().split(/\s+/).filter(Boolean) }))
    .filter((d) => d.words.length > 0 && !d.words[0]!.startsWith("#"));
}

/** The value words of the first directive whose leading words are `key` (e.g. ["sentinel", "monitor"]). */
export function redisValue(conf: RedisDirective[], ...key: string[]): string[] | undefined {
  const d = conf.find((x) => key.every((k, i) => x.words[i]?.toLowerCase() === k));
  return d?.words.slice(key.length);
}

/** A Redis node (data node or Sentinel) of docker-compose.yml, started from a seed config copied to its volume. */
export interface ComposeRedisNode {
  service: string;
  sentinel: boolean;
  /** the seed in the repository (absolute path) */
  seed: string;
  /** where the container runs it from: a copy on its own volume */
  runPath: string;
  /** the named volume mounted at the copy's directory */
  volume: string;
  conf: RedisDirective[];
}

const SEED_COPY = /^test -f (\S+) \|\| cp (\S+) \1; exec redis-server \1( --sentinel)?$/;

/**
 * The compose services that run redis-server, read from their commands: `sh -c "test -f RUN || cp SEED RUN;
 * exec redis-server RUN [--sentinel]"`. Throws when a Redis service is started some other way.
 */
export function composeRedisNodes(compose: Y = composeFile()): ComposeRedisNode[] {
  const nodes: ComposeRedisNode[] = [];
  for (const [service, svc] of Object.entries(compose.services as Record<string, Y>)) {
    if (!String(svc.image ?? "").startsWith("redis:")) continue;
    const command = ([] as string[]).concat(svc.command ?? []);
    if (command[0] !== "sh" || command[1] !== "-c" || command.length !== 3) throw new Error(`${service}: expected command ["sh", "-c", "…"], got ${JSON.stringify(command)}`);
    const m = SEED_COPY.exec(command[2]!);
    if (!m) throw new Error(`${service}: the command does not copy a seed config and run redis-server from the copy: ${command[2]}`);
    const [, runPath, seedInContainer, sentinelFlag] = m;
    const mounts = (svc.volumes as string[]).map((v) => v.split(":"));
    const seedMount = mounts.find(([, target]) => target === seedInContainer);
    if (!seedMount) throw new Error(`${service}: nothing is mounted at ${seedInContainer}`);
    const runDir = runPath!.slice(0, runPath!.lastIndexOf("/"));
    const volumeMount = mounts.find(([, target]) => target === runDir);
    if (!volumeMount) throw new Error(`${service}: nothing is mounted at ${runDir}`);
    const seed = join(DEPLOY, seedMount[0]!);
    nodes.push({ service, sentinel: sentinelFlag !== undefined, seed, runPath: runPath!, volume: volumeMount[0]!, conf: parseRedisConf(readFileSync(seed, "utf8")) });
  }
  return nodes;
}
