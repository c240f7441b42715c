// Baseline: bare Fastify with the form-body parser, answering Twilio's SMS webhook with empty TwiML
// and doing nothing else. Started as its own process by bench/bench.ts: `bare-fastify.ts <port>`.
import formbody from "@fastify/formbody";
import Fastify from "fastify";

const port = Number(process.argv[2]);
const app = Fastify({ logger: false });
await app.register(formbody);
app.post("/twilio/sms", async (_request, reply) => {
  await reply.type("text/xml").send('<?xml version="1.0" encoding="UTF-8"?><Response></Response>');
});
await app.listen({ host: "127.0.0.1", port });
process.stdout.write("ready\n");
