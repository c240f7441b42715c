// How a failure becomes a stanza error, in one place (RFC 6120 §8.3): a GatewayError as it says — its
// condition, its type and the text the user reads; anything else is an internal error, logged, never
// shown. IQs: xmpp.js's iqCallee answers what a handler lets through with internal-server-error.
import type { Element } from "@xmpp/xml";
import type { IncomingContext } from "@xmpp/component";
import { isGatewayError } from "../errors.js";
import { errorElement, errorReply } from "./stanzas.js";

type IqHandler = (ctx: IncomingContext) => Element | true | undefined | Promise<Element | true | undefined>;

/** An IQ handler whose GatewayErrors become the <error/> of its answer; anything else goes on to iqCallee. */
export function answeringErrors(handler: IqHandler): IqHandler {
  return async (ctx) => {
    try {
      return await handler(ctx);
    } catch (err) {
      if (isGatewayError(err)) return errorElement(err.stanzaType, err.condition, err.userText);
      throw err;
    }
  };
}

/**
 * The error reply to a message or presence that could not be handled: a GatewayError as it says; any
 * other failure as internal-server-error with `internalText` (logged by the caller), or nothing when
 * `internalText` is not given (the sender is not told about what it did not ask for).
 */
export function errorReplyFor(stanza: Element, err: unknown, internalText?: string): Element | undefined {
  if (isGatewayError(err)) return errorReply(stanza, err.stanzaType, err.condition, err.userText);
  return internalText === undefined ? undefined : errorReply(stanza, "wait", "internal-server-error", internalText);
}
