// Prints .env.example from the config schema (npx tsx scripts/env-example.ts > .env.example), so the
// file and the schema cannot drift; test/unit/config.test.ts checks they agree.
import { CONFIG_VARIABLES } from "../src/config.js";

const EXAMPLES: Partial<Record<keyof typeof CONFIG_VARIABLES, string>> = {
  XMPP_DOMAIN: "sms.example.com",
  XMPP_SECRET: "change-me-long-random-secret",
  PUBLIC_URL: "https://sms.example.com",
  ADMIN_TOKEN: "change-me-openssl-rand-hex-24",
  TWILIO_ACCOUNT_SID: "",
  TWILIO_AUTH_TOKEN: "",
  SMS_PROVIDER: "",
  TWILIO_API_URL: "",
  SECRETS_KEY: "",
};

const lines = ["# Switchboard configuration. Copy to .env and edit; environment variables override it.", ""];
for (const [name, v] of Object.entries(CONFIG_VARIABLES) as [keyof typeof CONFIG_VARIABLES, (typeof CONFIG_VARIABLES)[keyof typeof CONFIG_VARIABLES]][]) {
  const def = (v.schema as { _zod?: { def?: { defaultValue?: unknown } } })._zod?.def?.defaultValue;
  const value = EXAMPLES[name] ?? (def === undefined ? "" : String(def));
  const required = def === undefined && !(v.schema as { safeParse(x: unknown): { success: boolean } }).safeParse(undefined).success;
  const note = "defaultNote" in v ? v.defaultNote : undefined;
  lines.push(`# ${v.doc}${required ? " (required)" : note ? ` (default: ${note})` : def === undefined ? " (optional)" : ` (default: ${String(def)})`}`);
  lines.push(`${name}=${value}`, "");
}
process.stdout.write(lines.join("\n"));
