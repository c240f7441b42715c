// One line of the doctor's report.

export interface Check {
  /** Short name: configuration, gateway, redis, xmpp, twilio, public-url, number +1555… */
  name: string;
  ok: boolean;
  /** Not run (nothing to check, or a check it depends on failed); counts as neither ok nor failed. */
  skipped?: boolean;
  /** What was found. */
  detail: string;
  /** What to do about it (failed checks). */
  fix?: string;
  /** What --fix changed. */
  fixed?: string;
}

export const ok = (name: string, detail: string, extra: Partial<Check> = {}): Check => ({ name, ok: true, detail, ...extra });
export const fail = (name: string, detail: string, fix: string, extra: Partial<Check> = {}): Check => ({ name, ok: false, detail, fix, ...extra });
export const skip = (name: string, detail: string): Check => ({ name, ok: true, skipped: true, detail });

/** A URL for display: any password replaced by ***. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, (m) => (url.endsWith("/") ? m : ""));
  } catch {
    return url;
  }
}
