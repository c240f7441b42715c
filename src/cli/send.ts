// switchboard send — a test message either way through the gateway's real paths (POST /api/v1/test-messages).
import type { Command } from "commander";
import type { Action } from "./program.js";

interface Sent {
  id: string;
  direction: "to-sms" | "to-xmpp";
  from: string;
  to: string;
  status: string;
  note?: string;
}

export function sendCommand(program: Command, action: Action): void {
  program
    .command("send")
    .description("send a test message: from a linked user to a number (an SMS), or from a number to a linked user (arrives in their XMPP client)")
    .argument("<from>", "a linked user's bare JID, or the phone number the SMS comes from")
    .argument("<to>", "the phone number to text, or the linked user's bare JID")
    .argument("<body...>", "the text")
    .addHelpText(
      "after",
      `
Examples:
  switchboard send alice@example.com +15552223333 "Hello from the gateway"   # SMS, as if alice wrote it
  switchboard send +15552223333 alice@example.com "Hello back"               # arrives in alice's client

Both go through the same checks as real traffic (link, limits, opt-outs, segments).`,
    )
    .action(
      action(async (ctx, args) => {
        const [from, to, ...words] = args;
        const body = words.join(" ");
        const { data } = await ctx.api.request<Sent>("POST", "/api/v1/test-messages", { from, to, body });
        const what = data.direction === "to-sms" ? `SMS queued from ${data.from} to ${data.to}` : `message from ${data.from} queued for ${data.to}`;
        ctx.print(data, [`${what} (id ${data.id})`, ...(data.note ? [`note: ${data.note}`] : [])]);
      }),
    );
}
