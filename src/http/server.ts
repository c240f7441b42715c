// The Fastify app, built but not listening (tests use inject; main listens).
import formbody from "@fastify/formbody";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { SandboxProvider } from "../adapters/sandbox/provider.js";
import type { Inbound } from "../core/inbound.js";
import type { LinkStore, MessageStore, Pipeline, SmsProvider } from "../core/ports.js";
import type { Logger } from "../logger.js";
import { bearerAuth } from "./admin-auth.js";
import { deadLettersRoutes } from "./dead-letters-routes.js";
import { healthRoutes, type HealthSource } from "./health-routes.js";
import { mediaRoutes, type MediaReader } from "./media-routes.js";
import { installProblemHandlers } from "./problem.js";
import { sandboxRoutes } from "./sandbox-routes.js";
import { twilioRoutes, type TwilioRoutesDeps } from "./twilio-routes.js";
import { usersRoutes } from "./users-routes.js";
import { webhookMessagesRoute } from "./webhook-messages-route.js";
import { webhooksRoutes, type WebhooksRoutesDeps } from "./webhooks-routes.js";

export interface HttpDeps extends WebhooksRoutesDeps, Pick<TwilioRoutesDeps, "accounts" | "mainAccountSid"> {
  publicUrl: string;
  adminToken: string;
  bodyLimit: number;
  log: Logger;
  links: LinkStore;
  messages: MessageStore;
  inbound: Inbound;
  provider: SmsProvider;
  sandbox?: SandboxProvider;
  pipeline: Pick<Pipeline, "deadLetters" | "retryDeadLetter" | "enqueueToXmpp" | "idForDedupeKey" | "backlogFor">;
  domain: string;
  webhookInMaxBacklog: number;
  health: HealthSource;
  /** Re-hosted MMS media, served at /media/<token>/<name> (no admin token: the token in the URL is the key). */
  media?: MediaReader;
}

export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.log.child({ sub: "http" }) as FastifyBaseLogger, bodyLimit: deps.bodyLimit, logController: new LogController({ disableRequestLogging: true }) });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  await app.register(formbody, { bodyLimit: deps.bodyLimit });

  healthRoutes(app, deps.health);
  twilioRoutes(app, deps);
  if (deps.media) mediaRoutes(app, deps.media);
  // Authenticated by each target's own token, so outside the admin context.
  webhookMessagesRoute(app, { domain: deps.domain, webhooks: deps.webhooks, pipeline: deps.pipeline, maxBacklog: deps.webhookInMaxBacklog });

  // Everything under the admin token, in its own encapsulated context.
  await app.register(async (admin) => {
    admin.addHook("onRequest", bearerAuth(deps.adminToken));
    usersRoutes(admin, deps);
    webhooksRoutes(admin, deps);
    deadLettersRoutes(admin, deps);
    if (deps.sandbox) sandboxRoutes(admin, { sandbox: deps.sandbox, inbound: deps.inbound });
  });
  return app;
}
