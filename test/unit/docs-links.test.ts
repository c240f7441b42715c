// The documents' relative links stay true: every link in README.md, SECURITY.md, docs/, bench/README.md
// and deploy/ that points inside the repository reaches a file or folder that exists, and a `#anchor`
// into a Markdown file names one of its headings (GitHub's anchors: lower case, punctuation dropped,
// spaces to '-', a repeated heading gets -1, -2, …).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Links that leave the repository on purpose: GitHub resolves them against the repository's web pages
 * (SECURITY.md's "report a vulnerability" form), not against its files.
 */
const GITHUB_PAGES = new Set(["security/advisories/new"]);

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : markdownFiles(full);
    return e.isFile() && e.name.endsWith(".md") ? [full] : [];
  });
}

const DOCUMENTS = [join(ROOT, "README.md"), join(ROOT, "SECURITY.md"), join(ROOT, "bench", "README.md"), ...markdownFiles(join(ROOT, "docs")), ...markdownFiles(join(ROOT, "deploy"))];

/** The text outside fenced code blocks and inline code, where Markdown links live. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** Targets of inline links and images: [text](target) and [text](target "title"). */
function linkTargets(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

/** GitHub's anchor for a heading's text. */
function githubAnchor(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
    .replace(/`/g, "")
    .replace(/<[^>]+>/g, "");
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a Markdown file's headings define, with GitHub's -1, -2 … for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const withoutCode = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
  for (const m of withoutCode.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = githubAnchor(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const anchorCache = new Map<string, Set<string>>();
const anchorsOfFile = (file: string): Set<string> => {
  let a = anchorCache.get(file);
  if (!a) anchorCache.set(file, (a = anchorsOf(readFileSync(file, "utf8"))));
  return a;
};

/** What is wrong with one link of `from`, or undefined when it resolves. */
function brokenLink(from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) return undefined; // absolute URL, mailto:
  const hash = target.indexOf("#");
  const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const file = path === "" ? from : resolve(dirname(from), path);
  const inRepo = relative(ROOT, file);
  if (inRepo.startsWith("..") || inRepo.split(sep)[0] === "..") {
    const rest = inRepo
      .split(sep)
      .filter((p) => p !== "..")
      .join("/");
    return GITHUB_PAGES.has(rest) ? undefined : `leaves the repository (${inRepo})`;
  }
  if (!existsSync(file)) return `no such file: ${inRepo}`;
  if (anchor === undefined || anchor === "") return undefined;
  if (statSync(file).isDirectory() || !file.endsWith(".md")) return `an anchor into ${inRepo}, which is not a Markdown file`;
  return anchorsOfFile(file).has(anchor) ? undefined : `no heading for #${anchor} in ${inRepo}`;
}

test("GitHub's anchors: lower case, punctuation dropped, spaces to hyphens", () => {
  assert.equal(githubAnchor("Who may use it, and what it may cost"), "who-may-use-it-and-what-it-may-cost");
  assert.equal(githubAnchor("Outside → XMPP"), "outside--xmpp");
  assert.equal(githubAnchor("`@xmpp/component` 0.13"), "xmppcomponent-013");
  assert.equal(githubAnchor("What the gateway's domain answers"), "what-the-gateways-domain-answers");
  assert.equal(githubAnchor("Targets (issue 8)"), "targets-issue-8");
  assert.equal(githubAnchor("[SECURITY.md](SECURITY.md) and `doctor`"), "securitymd-and-doctor");
  assert.deepEqual([...anchorsOf("# A\n## Notes\n```\n## not a heading\n```\n### Notes\n")], ["a", "notes", "notes-1"]);
});

test("the documents are where this test looks", () => {
  for (const f of ["README.md", "SECURITY.md", "bench/README.md", "docs/README.md"]) {
    assert.ok(DOCUMENTS.includes(join(ROOT, f)), f);
  }
});

test("every relative link in README.md, SECURITY.md, docs/, bench/README.md and deploy/ resolves", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const doc of DOCUMENTS) {
    for (const target of linkTargets(readFileSync(doc, "utf8"))) {
      checked++;
      const why = brokenLink(doc, target);
      if (why) broken.push(`${relative(ROOT, doc)}: (${target}) ${why}`);
    }
  }
  assert.ok(checked > 100, `only ${checked} links found: is the link pattern still right?`);
  assert.deepEqual(broken, []);
});
