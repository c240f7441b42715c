// Whose credentials a Twilio media URL is fetched with. With "Enforce HTTP Auth on Media URLs" a
// MediaUrl on Twilio's API needs Basic auth with its account's credentials. A webhook is signed by
// whoever holds an account's token (with REGISTRATION=byo: any user), and it names its media URLs
// itself: so credentials go only to the signer's own media resource
// (/2010-04-01/Accounts/<signer>/Messages/<MM…>/Media/<ME…>), a URL of another account gets none, and any
// other URL on Twilio's API (a message log, say) is refused. URLs elsewhere are fetched like any other.
import type { MediaAccess, MediaAccessPolicy } from "../../core/flows/media.js";

/** A media resource of a message, the one shape that gets credentials: its account, message and media SIDs. */
const MEDIA_RESOURCE = /^\/2010-04-01\/Accounts\/(AC[0-9a-fA-F]{32})\/Messages\/(?:MM|SM)[0-9a-fA-F]{32}\/Media\/ME[0-9a-fA-F]{32}$/;

export interface TwilioMediaAccessOptions {
  /** TWILIO_API_URL's origin, else https://api.twilio.com. */
  apiOrigin: string;
  /** An account's Auth Token: the gateway's own, or one a user brought (REGISTRATION=byo); undefined when unknown. */
  authTokenOf(accountSid: string): Promise<string | undefined>;
}

export function createTwilioMediaAccess(opts: TwilioMediaAccessOptions): MediaAccessPolicy {
  const origin = new URL(opts.apiOrigin).origin;
  return {
    isProviderOrigin: (url) => url.origin === origin,
    async access(url, signer): Promise<MediaAccess> {
      if (url.origin !== origin) return { provider: false };
      const owner = MEDIA_RESOURCE.exec(url.pathname)?.[1];
      // No message text says why: the note the user sees stays plain (core/flows/media.ts).
      if (!owner || url.search) return { refused: "not a media link of a message" };
      if (signer === undefined || owner.toLowerCase() !== signer.toLowerCase()) return { provider: true };
      const token = await opts.authTokenOf(signer);
      return token ? { provider: true, credentials: { username: signer, password: token } } : { provider: true };
    },
  };
}
