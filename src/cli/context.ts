// What every command shares: the environment (process environment over a .env file, as the gateway
// reads it), the gateway's URL and admin token, output as text or JSON, and exit codes.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseDotenv } from "dotenv";
import { AdminClient } from "./api-client.js";
import { CliError, EXIT } from "./errors.js";

export { CliError, EXIT };

export interface CliIo {
  env: Record<string, string | undefined>;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface GlobalOptions {
  url?: string;
  json?: boolean;
  envFile?: string;
}

export type Env = Record<string, string | undefined>;

/**
 * The process environment over the .env file (the gateway's own rule: the environment wins). An
 * explicit --env-file must exist; the default ./.env is read when it is there.
 */
export function loadEnv(io: CliIo, envFile: string | undefined): { env: Env; envFile?: string } {
  const path = resolve(io.cwd, envFile ?? ".env");
  if (!existsSync(path)) {
    if (envFile !== undefined) throw new CliError(`--env-file ${envFile}: no such file`, EXIT.usage);
    return { env: { ...io.env } };
  }
  let fromFile: Record<string, string>;
  try {
    fromFile = parseDotenv(readFileSync(path));
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`, EXIT.usage);
  }
  const env: Env = { ...fromFile };
  for (const [k, v] of Object.entries(io.env)) if (v !== undefined) env[k] = v;
  return { env, envFile: path };
}

/** --url, else SWITCHBOARD_URL, else the gateway's own HTTP_HOST/HTTP_PORT when set, else http://127.0.0.1:8080. */
export function gatewayUrl(opts: GlobalOptions, env: Env): string {
  const given = opts.url ?? (env.SWITCHBOARD_URL || undefined);
  if (given !== undefined) {
    let u: URL;
    try {
      u = new URL(given);
    } catch {
      throw new CliError(`${opts.url !== undefined ? "--url" : "SWITCHBOARD_URL"}: ${JSON.stringify(given)} is not a URL such as http://127.0.0.1:8080`, EXIT.usage);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new CliError(`${opts.url !== undefined ? "--url" : "SWITCHBOARD_URL"}: must be an http:// or https:// URL`, EXIT.usage);
    return given.replace(/\/+$/, "");
  }
  if (env.HTTP_PORT && /^\d+$/.test(env.HTTP_PORT) && env.HTTP_PORT !== "0") {
    const host = !env.HTTP_HOST || env.HTTP_HOST === "0.0.0.0" || env.HTTP_HOST === "::" ? "127.0.0.1" : env.HTTP_HOST;
    return `http://${host.includes(":") ? `[${host}]` : host}:${env.HTTP_PORT}`;
  }
  return "http://127.0.0.1:8080";
}

/** SWITCHBOARD_ADMIN_TOKEN, else ADMIN_TOKEN (the gateway's own variable). */
export function adminToken(env: Env): string | undefined {
  return env.SWITCHBOARD_ADMIN_TOKEN || env.ADMIN_TOKEN || undefined;
}

/** A command's view of the options, the environment, the admin API and the output. */
export class Context {
  readonly env: Env;
  readonly url: string;
  readonly json: boolean;
  readonly envFile: string | undefined;
  private client: AdminClient | undefined;

  constructor(
    readonly io: CliIo,
    opts: GlobalOptions,
  ) {
    const loaded = loadEnv(io, opts.envFile);
    this.env = loaded.env;
    this.envFile = loaded.envFile;
    this.url = gatewayUrl(opts, this.env);
    this.json = opts.json === true;
  }

  get token(): string | undefined {
    return adminToken(this.env);
  }

  get api(): AdminClient {
    this.client ??= new AdminClient(this.url, this.token);
    return this.client;
  }

  /** Prints `value` as JSON with --json, else the text lines. */
  print(value: unknown, text: string | string[]): void {
    if (this.json) this.io.stdout(JSON.stringify(value, null, 2) + "\n");
    else {
      const lines = Array.isArray(text) ? text : [text];
      if (lines.length > 0) this.io.stdout(lines.join("\n") + "\n");
    }
  }
}

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
