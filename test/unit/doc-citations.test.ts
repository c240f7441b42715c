// Comments cite only documents of this repository: no document outside it (the design contract and the
// checked facts live in docs/), and every `docs/….md "Section"` a source file names exists with that
// section, so a reader can follow the citation.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CODE_DIRS = ["src", "test", "bench", "soak", "fuzz", "scripts", "types"];
const CODE_FILE = /\.(ts|mts|mjs|js|sh|py)$/;

function codeFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "results" ? [] : codeFiles(full);
    return e.isFile() && CODE_FILE.test(e.name) ? [full] : [];
  });
}

const FILES = CODE_DIRS.flatMap((d) => codeFiles(join(ROOT, d))).filter((f) => !f.endsWith("doc-citations.test.ts"));

/** A heading's text as a citation names it: no Markdown, one space between words. */
const headingText = (h: string): string => h.replace(/`/g, "").replace(/\s+/g, " ").trim().toLowerCase();

function headingsOf(file: string): Set<string> {
  const md = readFileSync(file, "utf8").replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, "");
  return new Set([...md.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*$/gm)].map((m) => headingText(m[1]!)));
}

test("no comment cites a document outside the repository", () => {
  const outside = /\b(GATEWAY\.md|FACTS(-2)?\.md|FACTS [A-F]\d?\b|STYLE\.md|\.\.\/shared\/)/;
  const found: string[] = [];
  for (const f of FILES) {
    readFileSync(f, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (outside.test(line)) found.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(found, []);
});

test("every docs/ page a source file cites exists, with the section it names", () => {
  const broken: string[] = [];
  let cited = 0;
  for (const f of FILES) {
    // Comment continuations (`// `, ` * `, `# `) joined, so a citation split over two lines reads whole.
    const text = readFileSync(f, "utf8").replace(/\n[ \t]*(\/\/|\*|#)[ \t]*/g, " ");
    for (const m of text.matchAll(/\b(docs\/[\w./-]+\.md)(?:\s+"([^"\n]{1,80})")?/g)) {
      cited++;
      const [, page, section] = m;
      const where = `${relative(ROOT, f)}: ${page}${section ? ` "${section}"` : ""}`;
      const file = join(ROOT, page!);
      if (!existsSync(file)) broken.push(`${where}: no such page`);
      else if (section && !headingsOf(file).has(headingText(section))) broken.push(`${where}: no such section`);
    }
  }
  assert.ok(cited > 20, `only ${cited} citations found: is the pattern still right?`);
  assert.deepEqual(broken, []);
});
