// The doctor's checks, in order; each one's result feeds the next (no config → nothing local to check;
// a running gateway → its /readyz instead of a handshake; refused credentials → numbers not checked).
import { createRedisAccountStore } from "../../adapters/redis/account-store.js";
import type { Redis } from "../../adapters/redis/client.js";
import { createRedisLinkStore } from "../../adapters/redis/link-store.js";
import type { Config } from "../../config.js";
import { createSecretBox } from "../../secrets.js";
import type { Context } from "../context.js";
import { checkConfig } from "./config-check.js";
import { gatewayCheck, probeGateway } from "./gateway-check.js";
import { checkPublicUrl } from "./public-url-check.js";
import { checkRedis } from "./redis-check.js";
import { createTwilioDoctor, type NumberToCheck } from "./twilio-check.js";
import { fail, ok, skip, type Check } from "./types.js";
import { checkXmppHandshake, xmppFromReadyz } from "./xmpp-check.js";

export interface DoctorOptions {
  fix: boolean;
  timeoutMs?: number;
}

type Link = { jid: string; phone: string };

/** The linked users: from the running gateway's admin API, else straight from Redis. */
async function linkedUsers(ctx: Context, gatewayRunning: boolean, redis: Redis | undefined): Promise<{ links: Link[]; source: string } | { error: string }> {
  const errors: string[] = [];
  if (gatewayRunning && ctx.api.hasToken) {
    try {
      const { data } = await ctx.api.request<{ users: Link[] }>("GET", "/api/v1/users");
      return { links: data.users, source: `the admin API at ${ctx.url}` };
    } catch (e) {
      errors.push(`admin API: ${(e as Error).message}`);
    }
  } else if (gatewayRunning) errors.push("admin API: no admin token (SWITCHBOARD_ADMIN_TOKEN or ADMIN_TOKEN)");
  if (redis) {
    try {
      return { links: await createRedisLinkStore(redis).list(), source: "Redis" };
    } catch (e) {
      errors.push(`Redis: ${(e as Error).message}`);
    }
  } else errors.push("Redis: not reachable");
  return { error: errors.join("; ") };
}

export async function runDoctor(ctx: Context, opts: DoctorOptions): Promise<Check[]> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const checks: Check[] = [];
  const cfg = checkConfig(ctx.env, ctx.envFile);
  checks.push(cfg.check);
  const config: Config | undefined = cfg.config;
  const needsConfig = (name: string) => skip(name, cfg.absent ? "needs the gateway's configuration (run doctor where its environment or .env is)" : "skipped: the configuration is invalid");

  // With the admin token, /readyz reports the component link, Redis, the journal and the breaker.
  const gw = await probeGateway(ctx.url, timeoutMs, ctx.token);
  checks.push(gatewayCheck(ctx.url, gw, config !== undefined));
  const running = gw.state === "running";

  let redis: Redis | undefined;
  let closeRedis: (() => Promise<void>) | undefined;
  let twilioDoctor: ReturnType<typeof createTwilioDoctor> | undefined;
  try {
    // Redis
    if (config) {
      const r = await checkRedis(config, Math.min(timeoutMs, 3000));
      redis = r.redis;
      closeRedis = r.close;
      checks.push(r.check);
    } else checks.push(needsConfig("redis"));

    // The component link: from the gateway when one runs, a handshake of our own only when none does.
    if (gw.state === "running") checks.push(xmppFromReadyz(ctx.url, gw, config));
    else if (!config) checks.push(needsConfig("xmpp"));
    else if (gw.state === "absent") checks.push(await checkXmppHandshake(config, timeoutMs));
    else checks.push(skip("xmpp", `not checked: whether a gateway runs at ${ctx.url} is unclear, and a test handshake would disturb a running one`));

    // Twilio
    let credentialsOk = false;
    if (!config) checks.push(needsConfig("twilio"));
    else if (config.SMS_PROVIDER !== "twilio") checks.push(skip("twilio", `SMS_PROVIDER=${config.SMS_PROVIDER}: no Twilio account to check`));
    else {
      twilioDoctor = createTwilioDoctor(config);
      const c = await twilioDoctor.checkCredentials();
      credentialsOk = c.ok;
      checks.push(c);
    }

    // PUBLIC_URL
    const publicUrlCheck = config ? await checkPublicUrl(config, ctx.env, timeoutMs) : needsConfig("public-url");
    checks.push(publicUrlCheck);
    // Numbers are only ever pointed at a PUBLIC_URL that answers as this gateway.
    const blockedFix =
      publicUrlCheck.ok && !publicUrlCheck.skipped
        ? undefined
        : "PUBLIC_URL does not answer as this gateway (see the public-url check): fix it first (doctor --fix never points numbers at it until it does)";

    // Each linked number's webhook
    if (!config) checks.push(needsConfig("numbers"));
    else if (!twilioDoctor) checks.push(skip("numbers", `SMS_PROVIDER=${config.SMS_PROVIDER}: no number webhooks to check`));
    else {
      const listed = await linkedUsers(ctx, running, redis);
      if ("error" in listed)
        checks.push(fail("numbers", `cannot list the linked users (${listed.error})`, "let doctor reach the gateway's admin API (--url and SWITCHBOARD_ADMIN_TOKEN) or Redis (REDIS_URL)"));
      else if (listed.links.length === 0) checks.push(ok("numbers", `no user is linked to a number yet (listed from ${listed.source})`));
      else {
        const byo = config.REGISTRATION === "byo" && redis ? createRedisAccountStore(redis, createSecretBox(config.SECRETS_KEY)) : undefined;
        const main = { accountSid: config.TWILIO_ACCOUNT_SID!, authToken: config.TWILIO_AUTH_TOKEN! };
        for (const link of listed.links) {
          let n: NumberToCheck = { ...link, creds: main, accountLabel: "the gateway's Twilio account" };
          try {
            const own = await byo?.accountOf(link.jid);
            const creds = own ? await byo?.credentials(own) : undefined;
            if (own && creds) n = { ...link, creds: { accountSid: own, authToken: creds.authToken }, accountLabel: `${link.jid}'s own Twilio account` };
          } catch (e) {
            checks.push(
              fail(
                `number ${link.phone}`,
                `${link.phone} (linked to ${link.jid}) was registered with the user's own Twilio account, whose credentials cannot be read: ${(e as Error).message}`,
                "set the same SECRETS_KEY the gateway uses",
              ),
            );
            continue;
          }
          // A number on the gateway's account cannot be checked with credentials Twilio refused.
          if (n.creds === main && !credentialsOk) {
            checks.push(skip(`number ${link.phone}`, "not checked: Twilio refused the gateway's credentials (see the twilio check)"));
            continue;
          }
          checks.push(await twilioDoctor.checkNumber(n, opts.fix && !blockedFix, blockedFix));
        }
      }
    }
  } finally {
    await closeRedis?.();
    await twilioDoctor?.close();
  }
  return checks;
}
