// Reads the XMPP-only parts of a user's message that change what it means for SMS: a correction
// (XEP-0308), reactions (XEP-0444), a retraction (XEP-0424, also its older XEP-0422 fastening form).
// The core decides what they become (core/model/chat-extensions.ts); here they are only read.
import type { Element } from "@xmpp/xml";
import { NS } from "./stanzas.js";

export interface MessageExtensions {
  replaces?: string;
  reactions?: string[];
  retracts?: string;
  /** A payload the gateway never turns into a text (e.g. another fastening); drop the message. */
  drop: boolean;
}

export function readExtensions(stanza: Element): MessageExtensions {
  const out: MessageExtensions = { drop: false };
  const retract = stanza.getChild("retract", NS.retract) ?? stanza.getChild("retract", NS.retractOld);
  const fastening = stanza.getChild("apply-to", NS.fasten);
  if (retract) {
    out.retracts = retract.attrs.id ?? "";
  } else if (fastening) {
    // XEP-0424 0.3 wrapped the retraction in a XEP-0422 fastening; other fastenings mean nothing to SMS.
    if (fastening.getChild("retract", NS.retractOld)) out.retracts = fastening.attrs.id ?? "";
    else out.drop = true;
  }
  const reactions = stanza.getChild("reactions", NS.reactions);
  if (reactions) out.reactions = reactions.getChildren("reaction").map((r) => r.text());
  const replace = stanza.getChild("replace", NS.correct);
  if (replace?.attrs.id) out.replaces = String(replace.attrs.id);
  return out;
}
