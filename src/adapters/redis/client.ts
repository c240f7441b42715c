import { createClient } from "redis";

function makeClient(url: string) {
  return createClient({
    url,
    socket: { reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 5000), connectTimeout: 5000 },
  });
}

export type Redis = ReturnType<typeof makeClient>;

/** Connects (rejecting if the first attempt fails), then reconnects with capped backoff. */
export async function connectRedis(url: string, onError: (err: Error) => void): Promise<Redis> {
  const client = makeClient(url);
  client.on("error", onError);
  await client.connect();
  return client;
}
