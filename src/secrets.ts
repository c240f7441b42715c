// Secrets at rest: AES-256-GCM under SECRETS_KEY for values the gateway must read back (webhook
// signing secrets, later users' provider credentials), SHA-256 for values it only has to recognise
// (bearer tokens). Nothing here logs; callers never log what goes in or comes out.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { GatewayError } from "./errors.js";

const VERSION = "v1";
const IV_BYTES = 12; // the GCM standard nonce size; random per value, so one key never reuses a nonce in practice
const TAG_BYTES = 16;

export const NO_SECRETS_KEY = "SECRETS_KEY is not set: the gateway refuses to store secrets without it; generate one with openssl rand -base64 32, set it in the environment and restart.";

const CANNOT_DECRYPT = "A stored secret could not be decrypted: SECRETS_KEY is not the key it was stored under, or the stored value was altered. Set the original key, or store the secret again.";

export interface SecretBox {
  /** True when a key is configured. */
  readonly enabled: boolean;
  /**
   * Encrypts `plaintext` as `v1:<iv>:<tag>:<ciphertext>` (base64url). `context` (e.g. `webhook:deploybot`)
   * is authenticated but not stored: a value copied to another record in Redis no longer decrypts.
   * Throws the "SECRETS_KEY is not set" GatewayError (503) without a key.
   */
  seal(plaintext: string, context: string): string;
  /** Decrypts what `seal` produced under the same context; throws on a wrong key, context or any tampering. */
  open(sealed: string, context: string): string;
}

/** `key`: SECRETS_KEY as configured (32 bytes, base64), or undefined when it is not set. */
export function createSecretBox(key: string | undefined): SecretBox {
  const raw = key === undefined ? undefined : Buffer.from(key, "base64");
  if (raw && raw.length !== 32) throw new Error("SECRETS_KEY must be 32 random bytes, base64-encoded (openssl rand -base64 32)");
  const requireKey = (): Buffer => {
    if (!raw) throw new GatewayError("unavailable", NO_SECRETS_KEY);
    return raw;
  };
  return {
    enabled: raw !== undefined,
    seal(plaintext, context) {
      const k = requireKey();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", k, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, "utf8"));
      const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return [VERSION, iv, cipher.getAuthTag(), ct].map((p) => (typeof p === "string" ? p : p.toString("base64url"))).join(":");
    },
    open(sealed, context) {
      const k = requireKey();
      const parts = sealed.split(":");
      const [iv, tag, ct] = parts.slice(1).map((p) => Buffer.from(p, "base64url"));
      if (parts.length !== 4 || parts[0] !== VERSION || iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || !ct) {
        throw new GatewayError("internal", CANNOT_DECRYPT, { logText: "stored secret is not in the v1 format" });
      }
      // authTagLength pinned: GCM would otherwise accept a truncated tag, which is far easier to forge.
      const decipher = createDecipheriv("aes-256-gcm", k, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(ct), decipher.final()]).toString("utf8");
      } catch (cause) {
        throw new GatewayError("internal", CANNOT_DECRYPT, { cause });
      }
    },
  };
}

/** SHA-256 hex of a token: what is stored instead of the token. Tokens are 256-bit random, so no salt or KDF is needed. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A bearer token. The `sbt_` prefix makes leaked tokens recognisable to secret scanners. */
export function newToken(): string {
  return `sbt_${randomBytes(32).toString("base64url")}`;
}

/** A signing secret (HMAC key) given to a receiver. */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}
