// The Fastify app, built but not listening (tests use inject; main listens).
import formbody from "@fastify/formbody";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { SandboxProvider } from "../adapters/sandbox/provider.js";
import type { ForgetUser } from "../core/flows/forget-user.js";
import type { Inbound } from "../core/flows/sms-in.js";
import type { Outbound } from "../core/flows/xmpp-out.js";
import type { WebhookIn } from "../core/flows/webhook-in.js";
import type { LinkStore, MessageStore, Delivery, ProviderWebhooks } from "../core/ports.js";
import type { Logger } from "../logger.js";
import type { AccessPolicy } from "../core/policy/access.js";
import type { SendLimits, UsageCounter } from "../core/policy/limits.js";
import type { Metrics } from "../metrics.js";
import { adminTokenCheck, bearerAuth, type AuthFailureLimit } from "./admin-auth.js";
import { docsRoutes, installDocs } from "./docs.js";
import { limitsRoutes } from "./limits-routes.js";
import { deadLettersRoutes } from "./dead-letters-routes.js";
import { healthRoutes, type HealthSource } from "./health-routes.js";
import { mediaRoutes, type MediaReader } from "./media-routes.js";
import { installProblemHandlers, sendProblem } from "./problem.js";
import { sandboxPageRoute, sandboxRoutes } from "./sandbox-routes.js";
import { testMessagesRoute } from "./test-messages-route.js";
import { providerRoutes } from "./provider-routes.js";
import { reconcileRoute, type ReconcileRouteDeps } from "./reconcile-route.js";
import { usersRoutes } from "./users-routes.js";
import { webhookMessagesRoute } from "./webhook-messages-route.js";
import { webhooksRoutes, type WebhooksRoutesDeps } from "./webhooks-routes.js";
import type { GatewayError } from "../errors.js";

export interface HttpDeps extends WebhooksRoutesDeps {
  publicUrl: string;
  /** Shown in the API documentation. */
  version?: string;
  adminToken: string;
  bodyLimit: number;
  log: Logger;
  links: LinkStore;
  /** Run by DELETE /api/v1/users/{jid}: the link and everything else kept about the user. */
  forgetUser?: ForgetUser;
  messages: MessageStore;
  inbound: Inbound;
  /** The XMPP → outside path (core/flows/xmpp-out.ts): POST /api/v1/test-messages queues through it. */
  outbound?: Pick<Outbound, "accept">;
  /** The SMS provider's webhooks, proven and read by its adapter. */
  providerWebhooks: ProviderWebhooks;
  sandbox?: SandboxProvider;
  /** The dead letters: listed and retried by the admin API. */
  delivery: Pick<Delivery, "deadLetters" | "retryDeadLetter">;
  /** Message in (core/flows/webhook-in.ts): POST /api/v1/webhooks/{name}/messages. */
  webhookIn: Pick<WebhookIn, "authenticate" | "accept">;
  domain: string;
  health: HealthSource;
  /** ALLOWED_DOMAINS: links and message-in recipients must be users of a served domain. */
  access?: AccessPolicy;
  limits?: SendLimits;
  metrics?: Metrics;
  /** Turns an error the routes did not expect (e.g. Redis unreachable) into one the user can act on. */
  explainError?: (err: unknown) => GatewayError | undefined;
  /** Failed admin-token checks per client address (ADMIN_AUTH_FAILURES_PER_MINUTE). */
  adminAuthFailures?: UsageCounter;
  /** Fastify's trustProxy (TRUST_PROXY): the proxies whose X-Forwarded-For names the client address; never `true` (src/config.ts). */
  trustProxy?: false | string;
  /** Re-hosted MMS media, served at /media/<token>/<name> (no admin token: the token in the URL is the key). */
  media?: MediaReader;
  /** Reconciliation with the provider on demand: POST /api/v1/reconcile (switchboard reconcile). */
  reconcile?: ReconcileRouteDeps;
}

export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ sub: "http" }) as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: deps.trustProxy ?? false,
    // A JID in a path may be up to 3071 characters (percent-encoded: more); the router's default of 100
    // would answer a long one 404. Node's 16 KiB header limit bounds the URL anyway.
    routerOptions: { maxParamLength: 16 * 1024 },
    // A URL the router cannot decode (a bad %-escape) gets a problem answer too, not Fastify's own JSON.
    frameworkErrors: (err, _request, reply) => void sendProblem(reply, { title: "Bad Request", status: 400, detail: err.message }),
  });
  // A browser opens spare connections it may never send a request on (preconnect, e.g. after /sandbox or
  // /docs). Node's close() does not count them idle, so it would wait on them for the keep-alive
  // timeout; nothing is in flight on them, so they are ended first.
  const unused = new Set<Socket>();
  app.server.on("connection", (socket: Socket) => {
    unused.add(socket);
    socket.once("close", () => unused.delete(socket));
  });
  app.server.on("request", (request: IncomingMessage) => void unused.delete(request.socket));
  app.addHook("preClose", async () => {
    for (const socket of unused) socket.destroy();
    unused.clear();
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app, deps.explainError ? { explain: deps.explainError } : {});
  await installDocs(app, { version: deps.version ?? "0.0.0", publicUrl: deps.publicUrl });
  await app.register(formbody, { bodyLimit: deps.bodyLimit });

  // One failure count for the admin routes and /readyz's details (src/http/health-routes.ts).
  const authFailures: AuthFailureLimit | undefined = deps.adminAuthFailures ? { counter: deps.adminAuthFailures, onRefused: () => deps.metrics?.limitRefused("admin_auth_failures") } : undefined;
  const isAdmin = adminTokenCheck(deps.adminToken, authFailures);
  healthRoutes(app, deps.health, { isAdmin: async (request, redisOk) => (await isAdmin(request, { count: redisOk })).ok });
  docsRoutes(app);
  const providerDeps = { publicUrl: deps.publicUrl, webhooks: deps.providerWebhooks, inbound: deps.inbound };
  if (deps.sandbox) {
    // Nothing signs the sandbox's webhooks (adapters/sandbox/webhooks.ts accepts any request), so anyone who
    // could post to /twilio/* could fake incoming texts and receipts: there they are admin calls,
    // checked before the body is read, failures counted with the admin routes' (same counter).
    await app.register(async (sandboxed) => {
      sandboxed.addHook("onRoute", (route) => void (route.schema = { ...route.schema, security: [{ adminToken: [] }] }));
      sandboxed.addHook("onRequest", bearerAuth(deps.adminToken, authFailures));
      providerRoutes(sandboxed, providerDeps);
    });
  } else {
    providerRoutes(app, providerDeps);
  }
  if (deps.media) mediaRoutes(app, deps.media);
  // The web phone's page loads without the token (it asks for it); its API calls are admin routes.
  if (deps.sandbox) sandboxPageRoute(app);
  // Authenticated by each target's own token, so outside the admin context.
  webhookMessagesRoute(app, { webhookIn: deps.webhookIn });

  // Everything under the admin token, in its own encapsulated context.
  await app.register(async (admin) => {
    admin.addHook("onRequest", bearerAuth(deps.adminToken, authFailures));
    limitsRoutes(admin, { ...(deps.limits ? { limits: deps.limits } : {}), ...(deps.metrics ? { metrics: deps.metrics } : {}) });
    usersRoutes(admin, { links: deps.links, ...(deps.forgetUser ? { forgetUser: deps.forgetUser } : {}), ...(deps.access ? { access: deps.access } : {}) });
    webhooksRoutes(admin, { webhooks: deps.webhooks, checkWebhookUrl: deps.checkWebhookUrl });
    deadLettersRoutes(admin, { delivery: deps.delivery, links: deps.links, messages: deps.messages });
    if (deps.outbound) testMessagesRoute(admin, { domain: deps.domain, links: deps.links, outbound: deps.outbound, inbound: deps.inbound });
    if (deps.sandbox) sandboxRoutes(admin, { sandbox: deps.sandbox, inbound: deps.inbound });
    if (deps.reconcile) reconcileRoute(admin, deps.reconcile);
  });
  return app;
}
