// Renders the server configuration templates in this folder (no dependencies).
//
//   import { render } from "./deploy/templates/render.mjs";
//   render("prosody-component.cfg.lua.tmpl", { COMPONENT_PORT: 5347, ... });
//
// CLI:
//   node deploy/templates/render.mjs prosody-component.cfg.lua.tmpl KEY=VALUE ...
//
// Placeholders are written {{NAME}} (NAME: capitals, digits, underscores). Every
// placeholder must have a value; a missing one is an error naming it.
import { readFileSync, readdirSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const templatesDir = dirname(fileURLToPath(import.meta.url));

const PLACEHOLDER = /\{\{\s*([A-Z][A-Z0-9_]*)\s*\}\}/g;

/** Names of the templates in this folder. */
export function listTemplates() {
  return readdirSync(templatesDir)
    .filter((f) => f.endsWith(".tmpl"))
    .sort();
}

function readTemplate(templateName) {
  if (typeof templateName !== "string" || templateName !== basename(templateName)) {
    throw new Error(`render: template name must be a file name in ${templatesDir}, got ${JSON.stringify(templateName)}`);
  }
  try {
    return readFileSync(join(templatesDir, templateName), "utf8");
  } catch (err) {
    if (err && err.code === "ENOENT") {
      throw new Error(`render: no template ${JSON.stringify(templateName)} in ${templatesDir} (have: ${listTemplates().join(", ")})`);
    }
    throw err;
  }
}

/** The distinct variable names a template uses, in order of first use. */
export function templateVariables(templateName) {
  const text = readTemplate(templateName);
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/**
 * Reads `templateName` from this folder and replaces each {{NAME}} with vars[NAME].
 * Throws an Error naming every variable the template uses that `vars` lacks
 * (undefined and null count as missing). Extra variables are ignored.
 */
export function render(templateName, vars) {
  const text = readTemplate(templateName);
  const values = vars ?? {};
  const missing = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[1];
    if ((!Object.hasOwn(values, name) || values[name] === undefined || values[name] === null) && !missing.includes(name)) {
      missing.push(name);
    }
  }
  if (missing.length > 0) {
    throw new Error(`render(${templateName}): missing variable${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
  }
  return text.replace(PLACEHOLDER, (_, name) => String(values[name]));
}

function isMain() {
  if (!process.argv[1]) return false;
  try {
    return pathToFileURL(realpathSync(process.argv[1])).href === pathToFileURL(realpathSync(fileURLToPath(import.meta.url))).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const [templateName, ...pairs] = process.argv.slice(2);
  if (!templateName || templateName === "-h" || templateName === "--help") {
    process.stderr.write("usage: node deploy/templates/render.mjs TEMPLATE KEY=VALUE ...\n" + `templates: ${listTemplates().join(", ")}\n`);
    process.exit(templateName ? 0 : 2);
  }
  const vars = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      process.stderr.write(`render: expected KEY=VALUE, got ${JSON.stringify(pair)}\n`);
      process.exit(2);
    }
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  try {
    process.stdout.write(render(templateName, vars));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
