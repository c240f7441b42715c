// WebhookStore (core/ports.ts) in memory, with the rules of adapters/redis/webhook-store.ts: names are
// checked, the token is kept only as its SHA-256 hash and compared in constant time, a rotation makes
// the old token fail at once, the signing secret is sealed under the SecretBox bound to the target's
// name, and a create without a key to seal a secret with is refused (503, naming SECRETS_KEY).
import { randomBytes, timingSafeEqual } from "node:crypto";
import { webhookNameProblem } from "../../core/model/addresses.js";
import type { WebhookStore, WebhookTarget } from "../../core/ports.js";
import { GatewayError } from "../../errors.js";
import { createSecretBox, hashToken, NO_SECRETS_KEY, newSecret, newToken, type SecretBox } from "../../secrets.js";

interface Row {
  url: string;
  allow: string[];
  sealedSecret: string;
  tokenHash: string;
  createdAt: number;
  updatedAt: number;
}

export interface MemoryWebhookStoreOptions {
  /** Seals the signing secrets; default: a box with a random key (SECRETS_KEY set). */
  box?: SecretBox;
  now?: () => number;
}

const secretContext = (name: string) => `webhook:${name}`;

export function createMemoryWebhookStore(opts: MemoryWebhookStoreOptions = {}): WebhookStore {
  const box = opts.box ?? createSecretBox(randomBytes(32).toString("base64"));
  const now = opts.now ?? Date.now;
  const rows = new Map<string, Row>();
  const valid = (name: string) => webhookNameProblem(name) === undefined;
  const targetOf = (name: string, r: Row): WebhookTarget => ({ name, url: r.url, allow: [...r.allow], createdAt: r.createdAt, updatedAt: r.updatedAt });

  return {
    async put(name, input) {
      const problem = webhookNameProblem(name);
      if (problem) throw new GatewayError("bad_request", problem, { field: "name" });
      const context = secretContext(name);
      const sealedGiven = input.secret === undefined ? undefined : box.seal(input.secret, context);
      const at = now();
      const existing = rows.get(name);
      if (existing) {
        Object.assign(existing, { url: input.url, allow: [...input.allow], updatedAt: at }, sealedGiven === undefined ? {} : { sealedSecret: sealedGiven });
        return { created: false, target: { ...targetOf(name, existing), updatedAt: at } };
      }
      const generated = input.secret === undefined && box.enabled ? newSecret() : undefined;
      const sealed = sealedGiven ?? (generated === undefined ? undefined : box.seal(generated, context));
      if (sealed === undefined) throw new GatewayError("unavailable", NO_SECRETS_KEY);
      const token = newToken();
      const row: Row = { url: input.url, allow: [...input.allow], sealedSecret: sealed, tokenHash: hashToken(token), createdAt: at, updatedAt: at };
      rows.set(name, row);
      return { created: true, target: targetOf(name, row), token, ...(generated === undefined ? {} : { secret: generated }) };
    },

    async get(name) {
      const r = valid(name) ? rows.get(name) : undefined;
      return r && targetOf(name, r);
    },

    async list() {
      return [...rows.keys()].sort().map((name) => targetOf(name, rows.get(name)!));
    },

    async delete(name) {
      return valid(name) && rows.delete(name);
    },

    async rotateToken(name) {
      const r = valid(name) ? rows.get(name) : undefined;
      if (!r) return undefined;
      const token = newToken();
      r.tokenHash = hashToken(token);
      r.updatedAt = now();
      return token;
    },

    async checkToken(name, token) {
      const stored = valid(name) ? rows.get(name)?.tokenHash : undefined;
      // Compared either way, so an unknown name costs the same as a wrong token.
      const expected = Buffer.from(stored ?? hashToken("no such target"), "hex");
      return timingSafeEqual(Buffer.from(hashToken(token), "hex"), expected) && stored !== undefined;
    },

    async signingSecret(name) {
      const r = valid(name) ? rows.get(name) : undefined;
      return r && box.open(r.sealedSecret, secretContext(name));
    },
  };
}
