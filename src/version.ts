// The gateway's version, from package.json (jabber:iq:version, the API documentation, the CLI).
import { readFileSync } from "node:fs";

/** Found from src/ (tsx) or dist/src/ (built). */
export const VERSION: string = (() => {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "switchboard" && pkg.version) return pkg.version;
    } catch {
      // try the next level
    }
  }
  return "0.0.0";
})();
