// The in-memory adapters (src/adapters/memory/) against the port contracts (test/support/contracts/);
// test/integration/redis-stores.test.ts runs the same cases on Redis, so the flows' unit tests, which
// run on these, see what the gateway sees.
import { createMemoryAccountStore } from "../../src/adapters/memory/account-store.js";
import { createMemoryIntroductionStore } from "../../src/adapters/memory/introduction-store.js";
import { createMemoryLinkStore } from "../../src/adapters/memory/link-store.js";
import { createMemoryMediaTokens } from "../../src/adapters/memory/media-tokens.js";
import { createMemoryMessageStore } from "../../src/adapters/memory/message-store.js";
import { createMemoryOptOutStore } from "../../src/adapters/memory/opt-out-store.js";
import { createMemoryReconcileState } from "../../src/adapters/memory/reconcile-state.js";
import { createMemoryUsageCounter } from "../../src/adapters/memory/usage-counter.js";
import { createMemoryWebhookStore } from "../../src/adapters/memory/webhook-store.js";
import { createSecretBox } from "../../src/secrets.js";
import { accountStoreContract } from "../support/contracts/account-store.js";
import { linkStoreContract } from "../support/contracts/link-store.js";
import { mediaTokensContract } from "../support/contracts/media-tokens.js";
import { messageStoreContract } from "../support/contracts/message-store.js";
import { optOutStoreContract } from "../support/contracts/opt-out-store.js";
import { reconcileStateContract } from "../support/contracts/reconcile-state.js";
import { usageCounterContract } from "../support/contracts/usage-counter.js";
import { webhookStoreContract } from "../support/contracts/webhook-store.js";

const KEY = Buffer.alloc(32, 7).toString("base64");

messageStoreContract("memory message store", async () => createMemoryMessageStore());
linkStoreContract("memory link store", async () => createMemoryLinkStore());

let clock = 1_000_000;
usageCounterContract("memory usage counter", {
  make: async (o) => createMemoryUsageCounter({ ...o, now: () => clock }),
  pass: async (ms) => void (clock += ms),
});

webhookStoreContract("memory webhook store", async ({ withKey }) => createMemoryWebhookStore({ box: createSecretBox(withKey ? KEY : undefined) }));
accountStoreContract("memory account store", async ({ withKey }) => createMemoryAccountStore({ canStore: withKey }));
optOutStoreContract("memory opt-out and introduction stores", async () => ({ optOuts: createMemoryOptOutStore(), introductions: createMemoryIntroductionStore() }));
mediaTokensContract("memory media tokens", async () => createMemoryMediaTokens());
reconcileStateContract("memory reconcile state", async () => createMemoryReconcileState());
