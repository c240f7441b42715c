// Lua scripts run by their SHA1 (EVALSHA): EVAL would send the whole script with every call and make
// Redis hash it again, several times per message. A Redis that does not know the script yet (first
// call, restart, SCRIPT FLUSH) answers NOSCRIPT, and the script is sent once with EVAL.
import { createHash } from "node:crypto";
import type { Redis } from "./client.js";

const shas = new Map<string, string>();

export async function runScript(redis: Redis, script: string, opts: { keys: string[]; arguments: string[] }): Promise<unknown> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = createHash("sha1").update(script).digest("hex");
    shas.set(script, sha);
  }
  try {
    return await redis.evalSha(sha, opts);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
    return redis.eval(script, opts);
  }
}
