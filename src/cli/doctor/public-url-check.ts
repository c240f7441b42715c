// Is PUBLIC_URL this gateway? Twilio posts every inbound SMS there; a wrong one loses them (Twilio does
// not redeliver). GET PUBLIC_URL/healthz must answer like a Switchboard gateway, within a short timeout.
import type { Config } from "../../config.js";
import { probe } from "../api-client.js";
import type { Env } from "../context.js";
import { fail, ok, skip, type Check } from "./types.js";

const FIX =
  "PUBLIC_URL must be the address Twilio reaches this gateway at: scheme, host and any path prefix your reverse proxy adds (e.g. https://sms.example.com or https://example.com/switchboard); check the value, its DNS record, the proxy's route to HTTP_HOST:HTTP_PORT, and that the gateway runs";

export async function checkPublicUrl(config: Config, env: Env, timeoutMs = 5000): Promise<Check> {
  if (config.SMS_PROVIDER === "sandbox" && !env.PUBLIC_URL) {
    return skip("public-url", `PUBLIC_URL is not set: fine with the sandbox provider (media links use ${config.PUBLIC_URL})`);
  }
  const url = `${config.PUBLIC_URL}/healthz`;
  const p = await probe(url, timeoutMs);
  if (!p.answered) return fail("public-url", `PUBLIC_URL ${config.PUBLIC_URL} is unreachable: GET ${url} failed (${p.code}: ${p.message})`, FIX);
  if (p.status >= 300 && p.status < 400) {
    return fail("public-url", `GET ${url} answers ${p.status}, a redirect: Twilio's webhook POSTs would not arrive as sent`, `${FIX}; use the URL it redirects to (e.g. https:// instead of http://)`);
  }
  let body: unknown;
  try {
    body = JSON.parse(p.body);
  } catch {
    body = undefined;
  }
  if (p.status === 200 && typeof body === "object" && body !== null && (body as { status?: unknown }).status === "ok") {
    return ok("public-url", `GET ${url} answers like this gateway (200 {"status":"ok"})`);
  }
  const ctype = p.contentType.split(";")[0] || "no content type";
  return fail("public-url", `GET ${url} answers ${p.status} (${ctype}), not like this gateway: PUBLIC_URL points at a different service, or a proxy path that does not reach the gateway`, FIX);
}
