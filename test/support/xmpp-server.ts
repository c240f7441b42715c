// A throw-away XMPP server (Prosody or ejabberd) for integration tests: its own temp
// dir, free loopback ports, a VirtualHost "localhost" with test users, and the
// XEP-0114 component listener rendered from deploy/templates (the same templates the
// demo and deploy/ use).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { render } from "../../deploy/templates/render.mjs";
import { freePort } from "./ports.js";
import { canConnect, forgetDir, removeDirAtExit, requireBinary, spawnTracked, tailFile, tcpExchange, type SpawnedProcess } from "./processes.js";
import { waitUntil } from "./wait.js";

const execFileP = promisify(execFile);

export type XmppServerKind = "prosody" | "ejabberd";

export interface XmppUser {
  username: string;
  password: string;
}

export interface StartXmppServerOptions {
  /** default: process.env.XMPP_SERVER ?? "prosody" */
  kind?: XmppServerKind;
  /** accounts on the VirtualHost, created before start ("name", or "name@elsewhere.example" on FOREIGN_DOMAIN) */
  users?: XmppUser[];
  /** the component's domain, e.g. "sms.localhost" (must differ from the VirtualHost) */
  componentDomain: string;
  componentSecret: string;
}

export interface XmppServer {
  kind: XmppServerKind;
  /** the VirtualHost users live on: "localhost" */
  domain: string;
  componentDomain: string;
  componentSecret: string;
  /** plain-TCP c2s port on 127.0.0.1 (no TLS offered) */
  c2sPort: number;
  /** XEP-0114 listener on 127.0.0.1 */
  componentPort: number;
  /** "xmpp://127.0.0.1:<componentPort>", ready for @xmpp/component's `service` */
  componentService: string;
  /** temp dir holding config, data and logs; removed by stop() */
  dir: string;
  /** the server's main log file (inside dir) */
  logFile: string;
  /** bare JID of a user on this server: `${username}@${domain}` */
  userJid(username: string): string;
  /** SIGTERM (SIGKILL after 3 s), then removal of dir; idempotent */
  stop(): Promise<void>;
  /**
   * Running: stops it and starts it again on the same ports with the same data (accounts,
   * rosters, offline messages). After stop(): starts it afresh on the same ports, config
   * and accounts (other data is gone with the dir). Either way resolves once it is ready.
   */
  restart(): Promise<void>;
  /** creates an account, or sets the password of an existing one (works before and while the server runs) */
  addUser(username: string, password: string): Promise<void>;
}

const DOMAIN = "localhost";
/**
 * A second VirtualHost on the same server, standing for a foreign server on the federated network (the
 * gateway serves DOMAIN's users only by default). An account there is named "user@elsewhere.example".
 */
export const FOREIGN_DOMAIN = "elsewhere.example";

/** "mallory@elsewhere.example" → ["mallory", "elsewhere.example"]; "alice" → ["alice", DOMAIN]. */
function userAndHost(username: string): [string, string] {
  const at = username.indexOf("@");
  return at < 0 ? [username, DOMAIN] : [username.slice(0, at), username.slice(at + 1)];
}
const READY_TIMEOUT_MS = 20_000;

export async function startXmppServer(opts: StartXmppServerOptions): Promise<XmppServer> {
  const rawKind = opts.kind ?? process.env.XMPP_SERVER ?? "prosody";
  if (rawKind !== "prosody" && rawKind !== "ejabberd") {
    throw new Error(`startXmppServer: unknown server kind ${JSON.stringify(rawKind)} (XMPP_SERVER must be "prosody" or "ejabberd")`);
  }
  if (opts.componentDomain === DOMAIN) {
    throw new Error(`startXmppServer: componentDomain must differ from the VirtualHost ${DOMAIN}`);
  }
  return rawKind === "prosody" ? startProsody(opts) : startEjabberd(opts);
}

// ---------------------------------------------------------------------------------------
// readiness probes

const STREAM_NS = "http://etherx.jabber.org/streams";

/** c2s answers a stream open with its features (SASL mechanisms) */
async function c2sReady(port: number): Promise<boolean> {
  const reply = await tcpExchange(
    port,
    `<?xml version='1.0'?><stream:stream to='${DOMAIN}' xmlns='jabber:client' xmlns:stream='${STREAM_NS}' version='1.0'>`,
    (r) => r.includes("</stream:features>") || r.includes("</features>"),
    1000,
  );
  return reply.includes("mechanism");
}

/** the component listener answers a jabber:component:accept stream open with a stream header */
export async function componentStreamHeader(port: number, componentDomain: string, timeoutMs = 2000): Promise<string> {
  return tcpExchange(
    port,
    `<?xml version='1.0'?><stream:stream to='${componentDomain}' xmlns='jabber:component:accept' xmlns:stream='${STREAM_NS}'>`,
    (r) => /<stream:stream[^>]*>/.test(r),
    timeoutMs,
  );
}

async function componentReady(port: number, componentDomain: string): Promise<boolean> {
  if (!(await canConnect(port))) return false;
  return /<stream:stream[^>]*>/.test(await componentStreamHeader(port, componentDomain, 1000));
}

function exitDescription(p: SpawnedProcess): string | undefined {
  return p.isRunning() ? undefined : `exited early with ${p.child.exitCode ?? p.child.signalCode}`;
}

function luaString(s: string): string {
  // JSON string escapes (\" \\ \n \t \uXXXX-free for ASCII) are valid Lua escapes for our values
  return JSON.stringify(s);
}

// ---------------------------------------------------------------------------------------
// Prosody

async function startProsody(opts: StartXmppServerOptions): Promise<XmppServer> {
  const prosody = requireBinary("prosody", "prosody");
  const prosodyctl = requireBinary("prosodyctl", "prosody");
  const dir = mkdtempSync(join(tmpdir(), "switchboard-prosody-"));
  removeDirAtExit(dir);
  const ports = await distinctFreePorts(2);
  const c2sPort = ports[0]!;
  const componentPort = ports[1]!;
  const configFile = join(dir, "prosody.cfg.lua");
  const logFile = join(dir, "prosody.log");

  const config = [
    "-- generated by test/support/xmpp-server.ts",
    "run_as_root = true",
    `pidfile = ${luaString(join(dir, "prosody.pid"))}`,
    `data_path = ${luaString(join(dir, "data"))}`,
    `certificates = ${luaString(join(dir, "certs"))}`,
    `log = { debug = ${luaString(join(dir, "prosody.debug.log"))}; info = ${luaString(logFile)}; error = ${luaString(join(dir, "prosody.err"))} }`,
    'interfaces = { "127.0.0.1" }',
    'local_interfaces = { "127.0.0.1" }',
    `c2s_ports = { ${c2sPort} }`,
    'c2s_interfaces = { "127.0.0.1" }',
    "c2s_direct_tls_ports = { }",
    "c2s_require_encryption = false",
    "allow_unencrypted_plain_auth = true",
    'authentication = "internal_hashed"',
    // xmpp.js computes SCRAM's PBKDF2 with one awaited WebCrypto HMAC per iteration: Prosody's
    // default 10000 iterations cost ~0.75 s per login; test accounts use fewer.
    "default_iteration_count = 1024",
    'storage = "internal"',
    "allow_registration = false",
    // roster + presence: subscriptions and presence; offline: messages to offline users are stored
    'modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "version"; "time"; "uptime"; "presence"; "message"; "iq"; "offline"; "posix" }',
    'modules_disabled = { "s2s"; "s2s_auth_certs"; "tls" }',
    "",
    render("prosody-component.cfg.lua.tmpl", {
      COMPONENT_PORT: componentPort,
      COMPONENT_INTERFACE: "127.0.0.1",
      XMPP_DOMAIN: opts.componentDomain,
      XMPP_SECRET: opts.componentSecret,
    }),
    "",
    `VirtualHost ${luaString(DOMAIN)}`,
    `VirtualHost ${luaString(FOREIGN_DOMAIN)}`,
    "",
  ].join("\n");

  const register = async (account: string, password: string): Promise<void> => {
    const [username, host] = userAndHost(account);
    try {
      await execFileP(prosodyctl, ["--config", configFile, "register", username, host, password], {
        cwd: dir,
        timeout: 15_000,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`prosodyctl register ${username}@${host} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    }
  };

  let proc: SpawnedProcess | undefined;
  return startServer({
    kind: "prosody",
    opts,
    dir,
    logFile,
    c2sPort,
    componentPort,
    prepare() {
      mkdirSync(join(dir, "data"), { recursive: true });
      mkdirSync(join(dir, "certs"), { recursive: true });
      writeFileSync(configFile, config);
    },
    register,
    async launch() {
      const p = spawnTracked(prosody, ["--config", configFile, "-F"], { cwd: dir, logFile: join(dir, "stdout.log") });
      proc = p;
      try {
        await waitUntil(async () => (await c2sReady(c2sPort)) && (await componentReady(componentPort, opts.componentDomain)), {
          timeoutMs: READY_TIMEOUT_MS,
          what: `prosody (c2s ${c2sPort}, component ${componentPort}; logs in ${dir})`,
          abortIf: () => exitDescription(p),
        });
      } catch (err) {
        await p.kill();
        const tail = tailFile(join(dir, "prosody.err"), 20) || tailFile(join(dir, "stdout.log"), 20);
        throw new Error(`${(err as Error).message}${tail ? `\n--- prosody errors (tail) ---\n${tail}` : ""}`);
      }
    },
    async halt() {
      await proc?.stop(3000);
    },
  });
}

// ---------------------------------------------------------------------------------------
// ejabberd

/** uid/gid of a system user, from /etc/passwd */
function systemUser(name: string): { uid: number; gid: number } | undefined {
  let passwd: string;
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return undefined;
  }
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

function chownRecursive(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true, recursive: true })) {
    chownSync(join(entry.parentPath ?? entry.path, entry.name), uid, gid);
  }
}

/**
 * ejabberd 23.01 (Debian package). ejabberdctl only runs as root (then it `su`s to the
 * ejabberd user, and su puts the node in a session of its own, out of reach of our
 * signals) or as the ejabberd user: so we spawn it directly as that user (root needed),
 * with the whole temp dir owned by it and HOME pointing there (fresh Erlang cookie).
 * ERL_DIST_PORT keeps it off the system epmd; s2s_access: none keeps it from trying
 * server-to-server for the component domain while no component is connected.
 * Accounts live in the node's Mnesia, so they are created through mod_http_api once it runs.
 */
async function startEjabberd(opts: StartXmppServerOptions): Promise<XmppServer> {
  const ejabberdctl = requireBinary("ejabberdctl", "ejabberd");
  const user = systemUser("ejabberd");
  if (user === undefined) throw new Error("ejabberd: no 'ejabberd' system user: install the Debian package ejabberd (apt-get install ejabberd)");
  const myUid = process.getuid?.();
  if (myUid !== 0 && myUid !== user.uid) {
    throw new Error("ejabberd tests must run as root (or as the ejabberd user): ejabberdctl refuses any other user");
  }
  const dir = mkdtempSync(join(tmpdir(), "switchboard-ejabberd-"));
  removeDirAtExit(dir);
  const ports = await distinctFreePorts(4);
  const c2sPort = ports[0]!;
  const componentPort = ports[1]!;
  const httpPort = ports[2]!;
  const distPort = ports[3]!;
  const node = `sb${randomBytes(5).toString("hex")}@localhost`;
  const logsDir = join(dir, "logs");
  const logFile = join(logsDir, "ejabberd.log");
  const yml = [
    "# generated by test/support/xmpp-server.ts",
    "loglevel: info",
    "log_rotate_count: 0",
    "hosts:",
    `  - ${DOMAIN}`,
    `  - ${FOREIGN_DOMAIN}`,
    "s2s_access: none",
    "auth_method: internal",
    "auth_password_format: scram",
    "acl:",
    "  local:",
    '    user_regexp: ""',
    "  loopback:",
    "    ip:",
    "      - 127.0.0.0/8",
    "access_rules:",
    "  local:",
    "    allow: local",
    "  c2s:",
    "    allow: all",
    "api_permissions:",
    '  "console commands":',
    "    from:",
    "      - ejabberd_ctl",
    "    who: all",
    '    what: "*"',
    '  "test harness over loopback http":',
    "    from:",
    "      - mod_http_api",
    "    who:",
    "      ip: 127.0.0.1/8",
    "    what:",
    "      - register",
    "      - unregister",
    "      - change_password",
    "      - status",
    "shaper_rules:",
    "  max_user_sessions: 10",
    "  max_user_offline_messages: 1000",
    "listen:",
    "  -",
    `    port: ${c2sPort}`,
    '    ip: "127.0.0.1"',
    "    module: ejabberd_c2s",
    "    max_stanza_size: 262144",
    "    access: c2s",
    "    starttls: false",
    "    starttls_required: false",
    "  -",
    `    port: ${httpPort}`,
    '    ip: "127.0.0.1"',
    "    module: ejabberd_http",
    "    request_handlers:",
    "      /api: mod_http_api",
    render("ejabberd-component.yml.tmpl", {
      COMPONENT_PORT: componentPort,
      COMPONENT_INTERFACE: "127.0.0.1",
      XMPP_DOMAIN: opts.componentDomain,
      XMPP_SECRET: opts.componentSecret,
    }).trimEnd(),
    "modules:",
    "  mod_disco: {}",
    "  mod_ping: {}",
    "  mod_version: {}",
    "  mod_time: {}",
    "  mod_roster: {}",
    "  mod_offline:",
    "    access_max_user_messages: max_user_offline_messages",
    "  mod_http_api: {}",
    "  mod_admin_extra: {}", // change_password
    "",
  ].join("\n");
  const ctlCfg = [
    "# generated by test/support/xmpp-server.ts (sourced by ejabberdctl)",
    `ERLANG_NODE=${node}`,
    `ERL_DIST_PORT=${distPort}`,
    'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"',
    "EJABBERD_BYPASS_WARNINGS=true",
    `EJABBERD_CONFIG_PATH=${join(dir, "ejabberd.yml")}`,
    `EJABBERD_PID_PATH=${join(dir, "ejabberd.pid")}`,
    `CONTRIB_MODULES_PATH=${join(dir, "contrib")}`,
    `CONTRIB_MODULES_CONF_DIR=${join(dir, "contrib", "conf")}`,
    "",
  ].join("\n");

  const api = async (command: string, args: Record<string, string>): Promise<{ ok: boolean; status: number; body: string }> => {
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/${command}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(args),
        signal: AbortSignal.timeout(10_000),
      });
      return { ok: res.ok, status: res.status, body: await res.text() };
    } catch (err) {
      throw new Error(`ejabberd: ${command} ${args.user ?? ""}@${args.host ?? DOMAIN} failed: ${(err as Error).message}`);
    }
  };
  const register = async (account: string, password: string): Promise<void> => {
    const [username, host] = userAndHost(account);
    const res = await api("register", { user: username, host, password });
    if (res.ok) return;
    if (/already registered/i.test(res.body)) {
      // like prosodyctl register: an existing account gets the new password
      const cp = await api("change_password", { user: username, host, newpass: password });
      if (cp.ok) return;
      throw new Error(`ejabberd: change_password ${username}@${host} failed: HTTP ${cp.status} ${cp.body}`);
    }
    throw new Error(`ejabberd: register ${username}@${host} failed: HTTP ${res.status} ${res.body}`);
  };

  let proc: SpawnedProcess | undefined;
  return startServer({
    kind: "ejabberd",
    opts,
    dir,
    logFile,
    c2sPort,
    componentPort,
    registerAfterLaunch: true,
    prepare() {
      mkdirSync(join(dir, "spool"), { recursive: true });
      mkdirSync(logsDir, { recursive: true });
      mkdirSync(join(dir, "contrib", "conf"), { recursive: true });
      writeFileSync(join(dir, "ejabberd.yml"), yml);
      writeFileSync(join(dir, "ejabberdctl.cfg"), ctlCfg);
      chownRecursive(dir, user.uid, user.gid);
    },
    async register(username, password, running) {
      if (!running) throw new Error("ejabberd: accounts can only be created while the server runs");
      await register(username, password);
    },
    async launch() {
      const p = spawnTracked(
        ejabberdctl,
        ["--config-dir", dir, "--ctl-config", join(dir, "ejabberdctl.cfg"), "--config", join(dir, "ejabberd.yml"), "--spool", join(dir, "spool"), "--logs", logsDir, "foreground"],
        {
          cwd: dir,
          logFile: join(dir, "stdout.log"),
          group: true,
          uid: user.uid,
          gid: user.gid,
          env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: dir, USER: "ejabberd", LOGNAME: "ejabberd", LANG: "C.UTF-8" },
        },
      );
      proc = p;
      try {
        await waitUntil(async () => (await c2sReady(c2sPort)) && (await componentReady(componentPort, opts.componentDomain)) && (await canConnect(httpPort)), {
          timeoutMs: READY_TIMEOUT_MS,
          intervalMs: 100,
          what: `ejabberd (c2s ${c2sPort}, component ${componentPort}, http ${httpPort}; logs in ${dir})`,
          abortIf: () => exitDescription(p),
        });
      } catch (err) {
        await p.kill();
        const tail = tailFile(join(dir, "stdout.log"), 30);
        throw new Error(`${(err as Error).message}${tail ? `\n--- stdout.log (tail) ---\n${tail}` : ""}`);
      }
    },
    async halt(final) {
      // A final stop deletes the data anyway: SIGKILL now instead of waiting ~2.5 s for
      // ejabberd's (noisy) SIGTERM shutdown. A restart shuts Mnesia down cleanly instead.
      if (final) await proc?.kill();
      else await proc?.stop(8000);
    },
  });
}

// ---------------------------------------------------------------------------------------
// shared

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function removeDir(dir: string): void {
  if (process.env.KEEP_TEST_SERVER_DIRS) {
    forgetDir(dir);
    process.stderr.write(`kept ${dir} (KEEP_TEST_SERVER_DIRS)\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
  forgetDir(dir);
}

interface ServerImpl {
  kind: XmppServerKind;
  opts: StartXmppServerOptions;
  dir: string;
  logFile: string;
  c2sPort: number;
  componentPort: number;
  /** (re)creates dir contents: config files, sub-dirs; must be idempotent */
  prepare(): void | Promise<void>;
  /** creates an account; `running` tells whether the server process is up */
  register(username: string, password: string, running: boolean): Promise<void>;
  /** starts the server process and waits until it is ready (kills it on failure) */
  launch(): Promise<void>;
  /** stops the server process; `final`: its data is about to be deleted */
  halt(final: boolean): Promise<void>;
  /** register() must run after launch() (ejabberd: accounts live in the running node) */
  registerAfterLaunch?: boolean;
}

async function startServer(impl: ServerImpl): Promise<XmppServer> {
  const users = new Map<string, string>();
  for (const u of impl.opts.users ?? []) users.set(u.username, u.password);
  let state: "running" | "halted" | "stopped" = "halted";

  const boot = async (): Promise<void> => {
    mkdirSync(impl.dir, { recursive: true, mode: 0o700 });
    removeDirAtExit(impl.dir);
    await impl.prepare();
    if (!impl.registerAfterLaunch) for (const [u, pw] of users) await impl.register(u, pw, false);
    await impl.launch();
    state = "running";
    if (impl.registerAfterLaunch) for (const [u, pw] of users) await impl.register(u, pw, true);
  };

  try {
    await boot();
  } catch (err) {
    await impl.halt(true).catch(() => undefined);
    removeDir(impl.dir);
    throw err;
  }

  return {
    kind: impl.kind,
    domain: DOMAIN,
    componentDomain: impl.opts.componentDomain,
    componentSecret: impl.opts.componentSecret,
    c2sPort: impl.c2sPort,
    componentPort: impl.componentPort,
    componentService: `xmpp://127.0.0.1:${impl.componentPort}`,
    dir: impl.dir,
    logFile: impl.logFile,
    userJid: (username) => `${username}@${DOMAIN}`,
    async stop() {
      if (state === "stopped") return;
      state = "stopped";
      await impl.halt(true);
      removeDir(impl.dir);
    },
    async restart() {
      if (state === "running") {
        state = "halted";
        await impl.halt(false);
        await impl.launch();
        state = "running";
      } else {
        // after stop(): the dir is gone; start afresh on the same ports with the same accounts
        await boot();
      }
    },
    async addUser(username, password) {
      users.set(username, password);
      if (state === "stopped") return; // replayed by restart()
      await impl.register(username, password, state === "running");
    },
  };
}

/** for debugging: the files in a server's dir */
export function listServerFiles(server: XmppServer): string[] {
  return readdirSync(server.dir, { recursive: true }).map(String).sort();
}
