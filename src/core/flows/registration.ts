// Who sends from which number, as the user sees it (docs/developers/design.md "Links"; issue 5 item 1). Two modes,
// chosen by the operator: `admin` (the operator links numbers through the admin API; users can see and
// drop their link) and `byo` (users bring their own Twilio account: the gateway checks the number is
// theirs, points its webhook here, and keeps their credentials sealed).
import { GatewayError } from "../../errors.js";
import { normalizeNumber } from "../model/addresses.js";
import { createForgetUser, type ForgetUser } from "./forget-user.js";
import type { AccountStore, LinkStore, ProviderAccounts } from "../ports.js";

export type RegistrationMode = "admin" | "byo";

export interface RegistrationDeps {
  mode: RegistrationMode;
  links: LinkStore;
  /** byo only. */
  accounts?: AccountStore;
  providerAccounts?: ProviderAccounts;
  /** Where a registered number's inbound messages must go (PUBLIC_URL/twilio/sms, with any fragment). */
  smsUrl: string;
  defaultRegion: string;
  log: { info(o: object, m: string): void };
  /**
   * Deletes everything kept about a user who unregisters (core/flows/forget-user.ts): link, credentials,
   * queued work, introductions, media. Default: the link and the credentials only.
   */
  forget?: ForgetUser;
}

export interface RegistrationInput {
  accountSid: string;
  authToken: string;
  phone: string;
}

export interface RegistrationStatus {
  phone?: string;
  /** The user's own account (byo), when they registered one. */
  accountSid?: string;
}

export interface Note {
  type: "info" | "warn" | "error";
  text: string;
}

const ACCOUNT_SID = /^AC[0-9a-f]{32}$/i;

/** Phone numbers in logs are masked (docs/developers/design.md "Conventions"). */
export const maskNumber = (p: string): string => (p.length > 6 ? `${p.slice(0, p.length - 4).replace(/\d/g, "•")}${p.slice(-4)}` : "••••");

export function createRegistration(deps: RegistrationDeps) {
  const { mode } = deps;
  const forget = deps.forget ?? createForgetUser({ links: deps.links, ...(deps.accounts ? { accounts: deps.accounts } : {}), log: deps.log });

  async function status(jid: string): Promise<RegistrationStatus> {
    const [phone, accountSid] = await Promise.all([deps.links.phoneOf(jid), deps.accounts?.accountOf(jid)]);
    return { ...(phone ? { phone } : {}), ...(accountSid ? { accountSid } : {}) };
  }

  /** Checks the input before anything is sent anywhere; throws not_acceptable naming the field. */
  function validate(input: RegistrationInput): RegistrationInput {
    const accountSid = input.accountSid.trim();
    const authToken = input.authToken.trim();
    if (!ACCOUNT_SID.test(accountSid))
      throw new GatewayError("not_acceptable", "The Account SID looks like AC followed by 32 letters and digits; copy it from your Twilio console.", { field: "account_sid" });
    if (!authToken || /\s/.test(authToken) || authToken.length > 128)
      throw new GatewayError("not_acceptable", "The Auth Token is missing or malformed; copy it from your Twilio console.", { field: "auth_token" });
    const phone = normalizeNumber(input.phone, deps.defaultRegion);
    if (!phone) throw new GatewayError("not_acceptable", `'${input.phone.slice(0, 40)}' is not a phone number; write it in international format, e.g. +15552223333.`, { field: "phone" });
    return { accountSid, authToken, phone };
  }

  /** Registers `jid` with its own Twilio number (byo). Returns notes for the user; throws GatewayError. */
  async function register(jid: string, raw: RegistrationInput): Promise<{ phone: string; notes: Note[] }> {
    if (mode === "admin" || !deps.accounts || !deps.providerAccounts) {
      throw new GatewayError("not_allowed", "On this gateway the operator links accounts to phone numbers; registering from a client is not offered. Ask the operator to link your account.");
    }
    const { accounts, providerAccounts } = deps;
    const input = validate(raw);
    // Said before any call to Twilio: nothing would be stored, so nothing should be changed there.
    if (!accounts.canStore) {
      throw new GatewayError("unavailable", "This gateway cannot store Twilio credentials yet: its operator has not set SECRETS_KEY. Nothing was changed; ask the operator.");
    }
    const holder = await deps.links.jidOf(input.phone);
    if (holder && holder !== jid) throw new GatewayError("conflict", `The number ${input.phone} is already registered by another account.`, { field: "phone" });

    const creds = { accountSid: input.accountSid, authToken: input.authToken };
    const number = await providerAccounts.findNumber(creds, input.phone);
    if (!number) {
      throw new GatewayError(
        "not_found",
        `${input.phone} is not a number of the Twilio account ${input.accountSid}. Check the number (Phone Numbers → Active numbers in the console) or the account.`,
        { field: "phone" },
      );
    }
    await providerAccounts.setSmsUrl(creds, number.sid, deps.smsUrl);
    const linked = await deps.links.link(jid, input.phone);
    try {
      await accounts.put(jid, input.phone, creds);
    } catch (err) {
      // A link without credentials could not send: undo it rather than leave half a registration.
      if (linked.created) await deps.links.unlink(jid).catch(() => undefined);
      throw err;
    }
    deps.log.info({ jid, phone: maskNumber(input.phone), replaced: linked.previous ? maskNumber(linked.previous) : undefined }, "registered with own Twilio account");

    const notes: Note[] = [
      { type: "info", text: `Registered: you now send and receive texts as ${input.phone}. Incoming texts to it are sent to this gateway (its messaging webhook was set to ${deps.smsUrl}).` },
    ];
    if (number.messagingServiceSid) {
      notes.push({
        type: "warn",
        text: `${input.phone} belongs to the Messaging Service ${number.messagingServiceSid}, whose inbound settings override the number's own webhook: incoming texts will not reach you until that service's Integration sends incoming messages to ${deps.smsUrl} (or defers to the sender's webhook), or the number leaves the service.`,
      });
    }
    return { phone: input.phone, notes };
  }

  /** Removes the link, any stored credentials, and the rest of what is kept about the user (forget-user.ts). False when there was nothing to remove. */
  async function unregister(jid: string): Promise<{ removed: boolean; phone?: string; hadCredentials: boolean }> {
    const res = await forget(jid);
    if (res.removed) deps.log.info({ jid, credentials: res.hadCredentials }, "unregistered");
    return { removed: res.removed, hadCredentials: res.hadCredentials, ...(res.phone ? { phone: res.phone } : {}) };
  }

  return { mode, status, register, unregister };
}

export type Registration = ReturnType<typeof createRegistration>;
