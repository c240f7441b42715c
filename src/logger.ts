// One root pino logger; children per subsystem. Secrets are redacted by path, bodies never logged,
// phone numbers masked with maskPhone() at the call site.
import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

const REDACT = [
  "authToken",
  "password",
  "secret",
  "token",
  "body",
  "Body",
  "*.authToken",
  "*.password",
  "*.secret",
  "*.token",
  "*.body",
  "*.Body",
  "req.headers.authorization",
  'req.headers["x-twilio-signature"]',
];

/**
 * Standard output written asynchronously: lines logged while a write is under way leave together in
 * the next one, instead of one blocking write(2) per line (at a few thousand messages a second, a
 * line or two each, that was a tenth of the gateway's time). Call flushSync() before process.exit.
 */
export function asyncStdout(): pino.DestinationStream & { flushSync(): void } {
  return pino.destination({ dest: 1, sync: false });
}

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: "[redacted]" }, base: { svc: "switchboard" } }, destination);
}

/** +15552223333 → +1555***3333: enough to tell numbers apart in logs, not enough to text them. */
export function maskPhone(phone: string | undefined): string | undefined {
  if (!phone) return phone;
  if (phone.length <= 6) return phone.replace(/.(?=.{2})/g, "*");
  return phone.slice(0, 5) + "*".repeat(Math.max(phone.length - 9, 1)) + phone.slice(-4);
}

/** Masks the localpart of a phone JID for logs. */
export function maskJid(jid: string | undefined): string | undefined {
  if (!jid) return jid;
  const at = jid.indexOf("@");
  if (at <= 0 || !jid.startsWith("+")) return jid;
  return `${maskPhone(jid.slice(0, at))}${jid.slice(at)}`;
}
