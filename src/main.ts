// Process entry only: config, logger, gateway, signals.
import "dotenv/config";
import { createGateway } from "./app/gateway.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { asyncStdout, createLogger } from "./logger.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const stdout = asyncStdout();
  const log = createLogger(config.LOG_LEVEL, stdout);
  const exit = (code: number): never => {
    try {
      stdout.flushSync();
    } catch {
      // nothing buffered, or stdout is gone: nothing more to save
    }
    process.exit(code);
  };
  let stopping = false;

  const gateway = await createGateway(config, log, {
    onFatal(message) {
      // One line a person can act on, then out: retrying a wrong secret forever helps no one.
      process.stderr.write(`switchboard: fatal: ${message}\n`);
      log.fatal({}, message);
      void shutdown(1);
    },
  });

  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => {
      log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, "graceful stop took too long; exiting");
      exit(code || 1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    try {
      await gateway.stop();
    } catch (err) {
      log.error({ err }, "error while stopping");
    }
    log.info("switchboard stopped");
    exit(code);
  }

  process.once("SIGTERM", () => void shutdown(0));
  process.once("SIGINT", () => void shutdown(0));
  await gateway.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`switchboard: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
