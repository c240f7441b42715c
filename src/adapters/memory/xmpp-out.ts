// An XmppOut (core/ports.ts) that records what it is handed, for unit tests of what reaches XMPP users:
// offline it refuses with RetryLater (as xmpp/component.ts does), and its barrier reports the bounces a
// test asks for.
import type { XmppDelivery } from "../../core/model/message.js";
import { deliveryKey } from "../../core/model/message.js";
import { RetryLater, type DeliveryMeta, type XmppOut } from "../../core/ports.js";

export type RecordingXmppOut = XmppOut & {
  online: boolean;
  /** Everything delivered, in order, with the attempt it came with. */
  readonly delivered: { item: XmppDelivery; attempt: number }[];
  /** Makes the next barrier report `item` as bounced by the server with `reason`. */
  bounce(item: XmppDelivery, reason: string): void;
};

export function createRecordingXmppOut(opts: { online?: boolean } = {}): RecordingXmppOut {
  const delivered: { item: XmppDelivery; attempt: number }[] = [];
  let bounces = new Map<string, string>();
  const out: RecordingXmppOut = {
    online: opts.online ?? true,
    delivered,
    bounce(item, reason) {
      bounces.set(deliveryKey(item), reason);
    },
    isOnline: () => out.online,
    async deliver(item: XmppDelivery, meta: DeliveryMeta) {
      if (!out.online) throw new RetryLater("XMPP server not connected");
      delivered.push({ item, attempt: meta.attempt });
    },
    async barrier() {
      const reported = bounces;
      bounces = new Map();
      return reported;
    },
  };
  return out;
}
