// The deployment kit in deploy/, checked statically: no Docker engine or cluster runs here. The compose
// file and the Kubernetes manifests must parse, set only variables the config schema knows (and a
// configuration loadConfig accepts), point their probes at real routes, keep the component link
// private, and the XMPP server configurations must equal a fresh render of deploy/templates/.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import Fastify from "fastify";
import { parseAllDocuments } from "yaml";
import { CONFIG_VARIABLES, loadConfig } from "../../src/config.js";
import { healthRoutes } from "../../src/http/health-routes.js";
import { render } from "../../deploy/templates/render.mjs";
import { compareComposeConfigs, composeEnvFile, parseEnvFile, renderComposeConfigs } from "../../deploy/render-configs.mjs";

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");
const read = (...parts: string[]): string => readFileSync(join(ROOT, ...parts), "utf8");

const CONFIG_NAMES = new Set(Object.keys(CONFIG_VARIABLES));
const REQUIRED = ["XMPP_DOMAIN", "XMPP_SECRET", "ADMIN_TOKEN"];
/** Set in the image and the unit for Node itself, not read by the gateway's config. */
const NODE_VARS = new Set(["NODE_ENV"]);
const DEFAULT_SHUTDOWN_MS = loadConfig({ XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef", SMS_PROVIDER: "sandbox" }).SHUTDOWN_TIMEOUT_MS;

/** parsed YAML: shapes are checked by the assertions */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the assertions below are the type check
type Y = any;

function parseYaml(file: string): Y[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  return docs.map((d) => {
    assert.deepEqual(d.errors.map(String), [], `${file} parses as YAML`);
    return d.toJS();
  });
}

function assertKnownNames(names: Iterable<string>, where: string, extra: Set<string> = new Set()): void {
  for (const name of names) {
    assert.ok(CONFIG_NAMES.has(name) || extra.has(name), `${where}: ${name} is not a variable of src/config.ts (CONFIG_VARIABLES)`);
  }
}

/** Compose variable interpolation with the defaults the file states: ${X:-d} / ${X-d} → d, ${X} → "". */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name, def: string | undefined) => def ?? "");
}

/** "host:port" of an xmpp://host:port URL */
function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url.replace(/^xmpp:/, "http:"));
  return { host: u.hostname, port: Number(u.port || 5347) };
}

function startsWithDir(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, "");
  return path === d || path.startsWith(`${d}/`);
}

// ---------------------------------------------------------------------------------------------
// The routes the probes and the HEALTHCHECK use

test("/healthz and /readyz exist at the root of the HTTP server", async () => {
  const app = Fastify();
  healthRoutes(app, {
    redisOk: async () => true,
    xmpp: () => ({ online: false, status: "offline", conflict: false, reconnects: 0 }),
    provider: "sandbox",
  });
  try {
    for (const url of ["/healthz", "/readyz"]) {
      const res = await app.inject({ method: "GET", url });
      assert.equal(res.statusCode, 200, `${url} answers 200`);
    }
  } finally {
    await app.close();
  }
  // buildHttp registers them on the root instance, not inside a prefixed plugin
  assert.match(read("src/http/server.ts"), /^\s*healthRoutes\(app, /m);
});

// ---------------------------------------------------------------------------------------------
// Rendered XMPP server configurations

test("deploy/compose/ configs equal a fresh render of deploy/templates/ (node deploy/render-configs.mjs)", () => {
  const files = compareComposeConfigs();
  assert.deepEqual(files.map((f) => basename(f.path)).sort(), ["ejabberd.yml", "prosody.cfg.lua"]);
  for (const f of files) {
    assert.ok(f.actual !== undefined, `${f.path} exists`);
    assert.equal(f.actual, f.expected, `${f.path} is stale: run  node deploy/render-configs.mjs`);
  }
});

test("the rendered configs embed the templates with the gateway's own domain and secret", () => {
  const env = parseEnvFile(readFileSync(composeEnvFile(), "utf8"));
  const vars = { COMPONENT_PORT: 5347, COMPONENT_INTERFACE: "0.0.0.0", XMPP_DOMAIN: env.XMPP_DOMAIN, XMPP_SECRET: env.XMPP_SECRET };
  const out = renderComposeConfigs(env);

  const prosody = out["prosody.cfg.lua"]!;
  assert.ok(prosody.includes(render("prosody-component.cfg.lua.tmpl", vars).trimEnd()), "Prosody config contains the rendered template");
  // the component block sits in the global part, before the first VirtualHost
  assert.ok(prosody.indexOf("component_ports") < prosody.indexOf("VirtualHost"), "component block before the first VirtualHost");

  const ejabberdText = out["ejabberd.yml"]!;
  assert.ok(ejabberdText.includes(render("ejabberd-component.yml.tmpl", vars).trimEnd()), "ejabberd config contains the rendered template");
  const [ejabberd] = parseYaml(join(DEPLOY, "compose", "ejabberd.yml"));
  const service = (ejabberd.listen as Y[]).find((l) => l.module === "ejabberd_service");
  assert.ok(service, "ejabberd listens for the component");
  assert.equal(service.port, 5347);
  assert.equal(service.hosts[env.XMPP_DOMAIN!].password, env.XMPP_SECRET);
  assert.ok(!(ejabberd.hosts as string[]).includes(env.XMPP_DOMAIN!), "the component domain is not an ejabberd vhost");
  assert.throws(() => renderComposeConfigs({ XMPP_DOMAIN: "sms.example.com" }), /XMPP_SECRET is not set/);
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

test("docker-compose.yml: Redis with AOF, Prosody, the gateway, an ejabberd profile; only known variables", () => {
  const [compose] = parseYaml(join(DEPLOY, "docker-compose.yml"));
  const services = compose.services as Record<string, Y>;
  for (const name of ["redis", "prosody", "switchboard", "ejabberd"]) assert.ok(services[name], `service ${name}`);

  // Redis persists
  const redisCmd = ([] as string[]).concat(services.redis.command).join(" ");
  assert.match(redisCmd, /--appendonly yes/);
  assert.match(redisCmd, /--appendfsync (everysec|always)/);
  assert.ok(
    (services.redis.volumes as string[]).some((v) => v.endsWith(":/data")),
    "Redis data on a volume",
  );

  // profiles: ejabberd is optional, the default stack runs Prosody
  assert.deepEqual(services.ejabberd.profiles, ["ejabberd"]);
  for (const name of ["redis", "prosody", "switchboard"]) assert.equal(services[name].profiles, undefined, `${name} runs by default`);

  // the gateway's environment: compose `environment` + env_file (switchboard.env, or the example it is copied from)
  const gw = services.switchboard;
  const envEntries: [string, string][] = Array.isArray(gw.environment)
    ? (gw.environment as string[]).map((e) => [e.split("=")[0]!, e.slice(e.indexOf("=") + 1)])
    : Object.entries(gw.environment as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  const environment = Object.fromEntries(envEntries.map(([k, v]) => [k, interpolate(v)]));
  assertKnownNames(Object.keys(environment), "docker-compose.yml switchboard.environment");
  let fromFiles: Record<string, string> = {};
  for (const entry of [].concat(gw.env_file) as (string | { path: string })[]) {
    const rel = typeof entry === "string" ? entry : entry.path;
    const file = join(DEPLOY, rel);
    const actual = existsSync(file) ? file : `${file}.example`;
    assert.ok(existsSync(actual), `env_file ${rel} (or ${rel}.example) exists`);
    const vars = parseEnvFile(readFileSync(actual, "utf8"));
    assertKnownNames(Object.keys(vars), `env_file ${basename(actual)}`);
    fromFiles = { ...fromFiles, ...vars };
  }
  const merged = { ...fromFiles, ...environment };
  for (const name of REQUIRED) assert.ok(merged[name], `the compose gateway gets ${name}`);
  const config = loadConfig(merged);
  assert.equal(environment.HTTP_HOST, "0.0.0.0", "the gateway listens on all interfaces of its container");
  assert.equal(config.SMS_PROVIDER, "twilio");
  // The env file's commented-out sandbox alternative starts too, and only with its unsafe switch:
  // the sandbox refuses the container's 0.0.0.0 otherwise.
  const example = readFileSync(join(DEPLOY, "compose", "switchboard.env.example"), "utf8");
  const alternative = parseEnvFile([...example.matchAll(/^# ((?:SMS_PROVIDER|SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN)=\S+)$/gm)].map((m) => m[1]).join("\n"));
  assert.deepEqual(alternative, { SMS_PROVIDER: "sandbox", SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: "true" });
  const { TWILIO_ACCOUNT_SID: _sid, TWILIO_AUTH_TOKEN: _token, ...withoutTwilio } = merged;
  assert.equal(loadConfig({ ...withoutTwilio, ...alternative }).SMS_PROVIDER, "sandbox");
  assert.throws(() => loadConfig({ ...withoutTwilio, SMS_PROVIDER: "sandbox" }), /HTTP_HOST: 0\.0\.0\.0 is not a loopback address/);

  // the published port reaches HTTP_PORT
  const published = (gw.ports as string[]).map((p) => Number(String(p).split(":").at(-1)));
  assert.deepEqual(published, [config.HTTP_PORT]);

  // the journal and the media live on a named volume
  const mounts = (gw.volumes as string[]).map((v) => v.split(":"));
  for (const dir of [config.JOURNAL_DIR, config.MEDIA_DIR]) {
    const m = mounts.find(([src, target]) => startsWithDir(dir, target!) && compose.volumes && src! in compose.volumes);
    assert.ok(m, `${dir} is on a named volume`);
  }
  assert.ok(existsSync(join(DEPLOY, gw.build.context, gw.build.dockerfile)), "the gateway is built from deploy/Dockerfile");
  assert.equal(gw.read_only, true);

  // the component link stays on an internal network, and its port is published by no one
  const xmpp = hostPort(config.XMPP_SERVICE);
  assert.equal(xmpp.host, "prosody", "default XMPP server: Prosody");
  const ejabberdXmpp = hostPort(interpolate(String(gw.environment.XMPP_SERVICE).replace(/\$\{SWITCHBOARD_XMPP_SERVER:-prosody\}/, "ejabberd")));
  for (const server of [xmpp.host, ejabberdXmpp.host]) {
    const shared = (services[server].networks as string[]).filter((n) => (gw.networks as string[]).includes(n));
    assert.ok(
      shared.some((n) => compose.networks[n]?.internal === true),
      `${server} and the gateway share an internal network`,
    );
  }
  for (const [name, svc] of Object.entries(services)) {
    for (const p of (svc.ports ?? []) as string[]) {
      assert.notEqual(Number(String(p).split(":").at(-1)), xmpp.port, `${name} does not publish the component port`);
    }
  }
  assert.equal(services.redis.ports, undefined, "Redis is not published");

  // the XMPP servers mount the rendered configs
  assert.ok((services.prosody.volumes as string[]).includes("./compose/prosody.cfg.lua:/etc/prosody/prosody.cfg.lua:ro"));
  assert.ok((services.ejabberd.volumes as string[]).includes("./compose/ejabberd.yml:/opt/ejabberd/conf/ejabberd.yml:ro"));

  // a graceful stop fits in the grace period
  assert.ok(Number(String(gw.stop_grace_period).replace(/s$/, "")) * 1000 > config.SHUTDOWN_TIMEOUT_MS, "stop_grace_period > SHUTDOWN_TIMEOUT_MS");
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

function k8sObjects(): { file: string; obj: Y }[] {
  const dir = join(DEPLOY, "k8s");
  const out: { file: string; obj: Y }[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    for (const obj of parseYaml(join(dir, file))) if (obj) out.push({ file, obj });
  }
  return out;
}

test("k8s: manifests parse; kustomization lists every manifest", () => {
  const objects = k8sObjects();
  const kustomization = objects.find((o) => o.obj.kind === "Kustomization");
  assert.ok(kustomization, "kustomization.yaml");
  const manifests = [...new Set(objects.filter((o) => o !== kustomization).map((o) => o.file))].sort();
  assert.deepEqual([...kustomization.obj.resources].sort(), manifests);
  for (const { file, obj } of objects) {
    if (obj === kustomization.obj) continue;
    assert.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `${file}: apiVersion, kind, metadata.name`);
  }
});

test("k8s: one replica, Recreate, probes on /readyz and /healthz, journal on a persistent volume, known variables", () => {
  const objects = k8sObjects().map((o) => o.obj);
  const byKind = (kind: string): Y[] => objects.filter((o) => o.kind === kind);
  const deployment = byKind("Deployment").find((d) => d.metadata.name === "switchboard");
  assert.ok(deployment);
  assert.equal(deployment.spec.replicas, 1, "Prosody and Openfire accept one component connection per domain");
  assert.equal(deployment.spec.strategy.type, "Recreate");
  const pod = deployment.spec.template.spec;
  assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
  assert.equal(pod.enableServiceLinks, false);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);

  // environment: the ConfigMap and the Secret it names, plus any env entries
  const env: Record<string, string> = {};
  for (const from of c.envFrom as Y[]) {
    if (from.configMapRef) {
      const cm = byKind("ConfigMap").find((o) => o.metadata.name === from.configMapRef.name);
      assert.ok(cm, `ConfigMap ${from.configMapRef.name} is in deploy/k8s`);
      assertKnownNames(Object.keys(cm.data), `ConfigMap ${cm.metadata.name}`);
      Object.assign(env, cm.data);
    } else if (from.secretRef) {
      const secret = byKind("Secret").find((o) => o.metadata.name === from.secretRef.name);
      assert.ok(secret, `Secret ${from.secretRef.name} is in deploy/k8s`);
      const data = { ...(secret.stringData ?? {}), ...Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString()])) };
      assertKnownNames(Object.keys(data), `Secret ${secret.metadata.name}`);
      Object.assign(env, data);
    } else {
      assert.fail(`unexpected envFrom entry ${JSON.stringify(from)}`);
    }
  }
  for (const e of (c.env ?? []) as Y[]) {
    assertKnownNames([e.name], "Deployment env");
    if (typeof e.value === "string") env[e.name] = e.value;
  }
  for (const name of REQUIRED) assert.ok(env[name], `the pod gets ${name}`);
  const config = loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])));
  assert.equal(config.HTTP_HOST, "0.0.0.0");

  // ports and probes
  const http = (c.ports as Y[]).find((p) => p.name === "http");
  assert.equal(http.containerPort, config.HTTP_PORT, "containerPort http = HTTP_PORT");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
    assert.ok(probe.httpGet.port === "http" || probe.httpGet.port === config.HTTP_PORT, "probes use the HTTP port");
    assert.ok(["/readyz", "/healthz"].includes(probe.httpGet.path));
  }
  const service = byKind("Service").find((s) => s.metadata.name === "switchboard");
  assert.ok(service.spec.ports.every((p: Y) => p.targetPort === "http" || p.targetPort === config.HTTP_PORT));
  assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);

  // journal and media on the PersistentVolumeClaim
  for (const dir of [config.JOURNAL_DIR, config.MEDIA_DIR]) {
    const mount = (c.volumeMounts as Y[]).find((m) => startsWithDir(dir, m.mountPath));
    assert.ok(mount, `a volume is mounted at ${dir}`);
    const volume = (pod.volumes as Y[]).find((v) => v.name === mount.name);
    assert.ok(volume?.persistentVolumeClaim, `${dir} is on a PersistentVolumeClaim`);
    assert.ok(
      byKind("PersistentVolumeClaim").some((p) => p.metadata.name === volume.persistentVolumeClaim.claimName),
      "the claim is in deploy/k8s",
    );
  }
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > config.SHUTDOWN_TIMEOUT_MS, "terminationGracePeriodSeconds > SHUTDOWN_TIMEOUT_MS");

  // the component link: XMPP_SERVICE names a ClusterIP Service; no Service exposes that port outside
  const xmpp = hostPort(config.XMPP_SERVICE);
  const xmppService = byKind("Service").find((s) => s.metadata.name === xmpp.host);
  assert.ok(xmppService, `Service ${xmpp.host} is in deploy/k8s`);
  assert.equal(xmppService.spec.type ?? "ClusterIP", "ClusterIP");
  assert.ok(xmppService.spec.ports.some((p: Y) => p.port === xmpp.port));
  for (const s of byKind("Service")) assert.equal(s.spec.type ?? "ClusterIP", "ClusterIP", `${s.metadata.name} stays inside the cluster`);
});

test("k8s: kubectl kustomize builds the manifests (when kubectl is installed)", async (t) => {
  let stdout: string;
  try {
    ({ stdout } = await execFileP("kubectl", ["kustomize", join(DEPLOY, "k8s")], { timeout: 30_000 }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return t.skip("kubectl is not installed");
    throw err;
  }
  const kinds = parseAllDocuments(stdout)
    .map((d) => (d.toJS() as Y).kind)
    .sort();
  assert.deepEqual(kinds, ["ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim", "Secret", "Service", "Service"]);
});

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
}

function dockerfile(): Instruction[] {
  const text = read("deploy", "Dockerfile").replace(/\\\r?\n/g, " ");
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
}

test("Dockerfile: multi-stage, production dependencies only, non-root, HEALTHCHECK on /healthz", () => {
  const all = dockerfile();
  const stages: Instruction[][] = [];
  for (const ins of all) {
    if (ins.op === "FROM") stages.push([]);
    stages.at(-1)?.push(ins);
  }
  assert.ok(stages.length >= 2, "at least two FROM");
  const args = Object.fromEntries(all.filter((i) => i.op === "ARG" && i.args.includes("=")).map((i) => i.args.split("=") as [string, string]));
  assert.equal(args.NODE_IMAGE, "node:20-bookworm-slim");
  const build = stages[0]!;
  const final = stages.at(-1)!;
  assert.ok(
    build.some((i) => i.op === "RUN" && /npm run build/.test(i.args)),
    "the first stage builds",
  );

  const runs = final.filter((i) => i.op === "RUN").map((i) => i.args);
  assert.ok(
    runs.some((r) => /npm ci\b.*--omit=dev/.test(r)),
    "final stage: npm ci --omit=dev",
  );
  assert.ok(!runs.some((r) => /npm (ci|install)\b(?!.*--omit=dev)/.test(r)), "final stage installs no dev dependencies");
  const copies = final.filter((i) => i.op === "COPY").map((i) => i.args);
  assert.ok(!copies.some((c) => /--from=\S+\s+\S*node_modules/.test(c)), "node_modules is not copied from the build stage");
  assert.ok(
    copies.some((c) => /--from=build\s+\/app\/dist\/src\b/.test(c)),
    "compiled code from the build stage",
  );

  const users = final.filter((i) => i.op === "USER").map((i) => i.args.split(":")[0]);
  assert.ok(users.length > 0, "final stage sets USER");
  assert.ok(!["root", "0"].includes(users.at(-1)!), "USER is not root");

  const healthcheck = final.find((i) => i.op === "HEALTHCHECK");
  assert.ok(healthcheck && /\/healthz/.test(healthcheck.args), "HEALTHCHECK on /healthz");

  // runtime environment: known names, listener on all interfaces, port = EXPOSE, data on /data
  const env: Record<string, string> = {};
  for (const i of final.filter((x) => x.op === "ENV")) {
    for (const m of i.args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  assertKnownNames(Object.keys(env), "Dockerfile ENV", NODE_VARS);
  assert.equal(env.HTTP_HOST, "0.0.0.0");
  assert.deepEqual(
    final.filter((i) => i.op === "EXPOSE").map((i) => Number(i.args)),
    [Number(env.HTTP_PORT)],
  );
  const volume = final.find((i) => i.op === "VOLUME");
  const volumeDirs = volume ? (JSON.parse(volume.args) as string[]) : [];
  for (const dir of [env.JOURNAL_DIR!, env.MEDIA_DIR!])
    assert.ok(
      volumeDirs.some((v) => startsWithDir(dir, v)),
      `${dir} is under a VOLUME`,
    );

  // the command is `npm start` without npm
  const cmd = JSON.parse(final.find((i) => i.op === "CMD")!.args) as string[];
  const start = (JSON.parse(read("package.json")) as { scripts: { start: string } }).scripts.start;
  assert.equal(cmd.join(" "), start);

  // every file copied from the build context exists and passes .dockerignore (an allow list)
  const allowed = read(".dockerignore")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("!"))
    .map((l) => l.slice(1));
  for (const c of all.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))) {
    const sources = c.args.split(/\s+/).slice(0, -1);
    for (const s of sources) {
      assert.ok(existsSync(join(ROOT, s)), `COPY source ${s} exists`);
      assert.ok(allowed.includes(s.replace(/\/$/, "")), `COPY source ${s} is allowed by .dockerignore`);
    }
  }
});

test("Dockerfile HEALTHCHECK command: exit 0 on a 200 from /healthz, 1 otherwise", async () => {
  const healthcheck = dockerfile().find((i) => i.op === "HEALTHCHECK")!;
  const cmd = JSON.parse(healthcheck.args.slice(healthcheck.args.indexOf("CMD") + 3).trim()) as string[];
  assert.equal(cmd[0], "node");
  let status = 200;
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? "");
    res.writeHead(req.url === "/healthz" ? status : 404).end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const run = async (httpPort: number): Promise<number> => {
    try {
      await execFileP(process.execPath, cmd.slice(1), { env: { ...process.env, HTTP_PORT: String(httpPort) }, timeout: 15_000 });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  };
  try {
    assert.equal(await run(port), 0);
    status = 503;
    assert.equal(await run(port), 1);
    assert.deepEqual(paths, ["/healthz", "/healthz"]);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  // nothing listening
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  assert.equal(await run(closed), 1);
});

// ---------------------------------------------------------------------------------------------
// systemd

function unitFile(): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of read("deploy", "systemd", "switchboard.service").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    assert.ok(current, `a key outside a section: ${line}`);
    const eq = line.indexOf("=");
    assert.ok(eq > 0, `KEY=VALUE: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

test("systemd unit: hardened, restarts on failure, stops within SHUTDOWN_TIMEOUT_MS", () => {
  const unit = unitFile();
  assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
  const svc = unit.get("Service")!;
  const one = (key: string): string | undefined => svc.get(key)?.at(-1);

  const expected: Record<string, string> = {
    NoNewPrivileges: "yes",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    CapabilityBoundingSet: "",
    RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
    Restart: "on-failure",
    KillSignal: "SIGTERM",
    EnvironmentFile: "/etc/switchboard/env",
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(one(key), value, `${key}=${value}`);
  assert.ok(svc.get("SystemCallFilter")?.includes("@system-service"), "SystemCallFilter=@system-service");
  assert.match(one("MemoryMax") ?? "", /^\d+[KMG]?$/, "MemoryMax");
  assert.ok(one("DynamicUser") === "yes" || (one("User") && one("User") !== "root"), "runs as a dedicated or dynamic user");

  const exec = one("ExecStart")!;
  assert.match(exec, /--max-old-space-size=160 --max-semi-space-size=8 \S*dist\/src\/main\.js$/);

  // Environment= defaults: known names; JOURNAL_DIR and MEDIA_DIR are writable
  const env = Object.fromEntries((svc.get("Environment") ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  assertKnownNames(Object.keys(env), "systemd Environment=", NODE_VARS);
  const writable = (svc.get("ReadWritePaths") ?? []).flatMap((v) => v.split(/\s+/));
  for (const dir of [env.JOURNAL_DIR, env.MEDIA_DIR]) {
    assert.ok(dir && writable.some((w) => startsWithDir(dir, w)), `${dir} is under ReadWritePaths`);
  }
  const stopSec = Number(one("TimeoutStopSec"));
  assert.ok(stopSec * 1000 > DEFAULT_SHUTDOWN_MS && stopSec * 1000 <= DEFAULT_SHUTDOWN_MS + 30_000, "TimeoutStopSec a bit above SHUTDOWN_TIMEOUT_MS");
});

test("systemd unit: systemd-analyze verify (when systemd-analyze is installed)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sb-unit-"));
  try {
    // verify checks that ExecStart's binary exists: use this machine's node
    const unitPath = join(dir, "switchboard.service");
    writeFileSync(unitPath, read("deploy", "systemd", "switchboard.service").replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `));
    let stderr: string;
    try {
      ({ stderr } = await execFileP("systemd-analyze", ["verify", unitPath], { timeout: 60_000 }));
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT") return t.skip("systemd-analyze is not installed");
      assert.fail(`systemd-analyze verify failed:\n${e.stderr ?? e.message}`);
    }
    const about = stderr.split("\n").filter((l) => l.includes("switchboard.service"));
    assert.deepEqual(about, [], "no warnings about the unit (unknown keys or values are only warnings)");

    // exposure score (systemd >= 250 can score a unit file offline); lower is better, 10 = unprotected
    try {
      const { stdout } = await execFileP("systemd-analyze", ["security", "--offline=yes", "--no-pager", unitPath], { timeout: 60_000 });
      const m = /Overall exposure level for switchboard\.service: ([\d.]+)/.exec(stdout);
      assert.ok(m, "exposure level printed");
      assert.ok(Number(m[1]) <= 2.5, `exposure level ${m[1]} <= 2.5`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      t.diagnostic(`systemd-analyze security --offline not available: ${(err as Error).message.split("\n")[0]}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
