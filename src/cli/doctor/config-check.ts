// Check 1: the gateway's configuration, read exactly as the gateway reads it (src/config.ts).
import { CONFIG_VARIABLES, ConfigError, isLoopbackHost, loadConfig, type Config } from "../../config.js";
import type { Env } from "../context.js";
import { fail, ok, safeUrl, skip, type Check } from "./types.js";

export interface ConfigResult {
  check: Check;
  config?: Config;
  /** No gateway variable is set here at all (a remote check through the admin API only). */
  absent: boolean;
}

/** Variables the CLI itself also reads; their presence alone does not make a gateway configuration. */
const CLI_ALSO_READS = new Set(["ADMIN_TOKEN", "HTTP_HOST", "HTTP_PORT"]);

export function checkConfig(env: Env, envFile: string | undefined): ConfigResult {
  const present = Object.keys(CONFIG_VARIABLES).filter((k) => !CLI_ALSO_READS.has(k) && env[k] !== undefined && env[k] !== "");
  if (present.length === 0) {
    return {
      absent: true,
      check: skip(
        "configuration",
        "no gateway configuration here (no .env, no XMPP_* variables): only what the gateway at --url reports is checked; run doctor where the gateway's environment or .env is for the full check",
      ),
    };
  }
  const source = envFile ? `${envFile} and the environment` : "the environment";
  try {
    const config = loadConfig(env);
    const parts = [`XMPP_DOMAIN=${config.XMPP_DOMAIN}`, `XMPP_SERVICE=${config.XMPP_SERVICE}`, `REDIS_URL=${safeUrl(config.REDIS_URL)}`, providerNote(config, env), `PUBLIC_URL=${config.PUBLIC_URL}`];
    return { absent: false, config, check: ok("configuration", `valid (from ${source}): ${parts.join(", ")}`) };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // "invalid configuration: XMPP_SECRET: is required; PUBLIC_URL: …" → the variable names.
    const names = [...new Set([...e.message.matchAll(/(?:^|; |: )([A-Z][A-Z0-9_]+): /g)].map((m) => m[1]!).filter((n) => n in CONFIG_VARIABLES))];
    const what = names.length > 0 ? names.join(", ") : "the variables named above";
    return {
      absent: false,
      check: fail("configuration", `${e.message} (read from ${source})`, `set ${what} in the environment or in .env (.env.example lists every variable with its default), then restart the gateway`),
    };
  }
}

/** Which provider runs, and why: the operator should never have to guess whether texts leave the gateway. */
function providerNote(config: Config, env: Env): string {
  if (config.SMS_PROVIDER === "twilio") return `SMS_PROVIDER=twilio${env.SMS_PROVIDER ? "" : " (implied by TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"}`;
  const exposed = isLoopbackHost(config.HTTP_HOST) ? "" : `, listening on ${config.HTTP_HOST} beyond this machine because SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN=true`;
  return `SMS_PROVIDER=sandbox (no SMS leaves the gateway${exposed})`;
}
