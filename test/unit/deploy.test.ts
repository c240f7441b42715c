// The deployment kit in deploy/, checked statically: no Docker engine or cluster runs here. The compose
// file and the Kubernetes manifests must parse, run several gateways by default (distinct instances,
// a shared media volume, a graceful hand-over within the grace periods), set only variables the config
// schema knows (and a configuration loadConfig accepts), point their probes at real routes, keep the
// component link private, and the XMPP server configurations must equal a fresh render of
// deploy/templates/. test/integration/deploy-redis.test.ts starts the compose example's Redis part.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import Fastify from "fastify";
import { parseAllDocuments } from "yaml";
import { CONFIG_VARIABLES, loadConfig, type Config } from "../../src/config.js";
import { healthRoutes } from "../../src/http/health-routes.js";
import { render } from "../../deploy/templates/render.mjs";
import { compareComposeConfigs, composeEnvFile, parseEnvFile, renderComposeConfigs } from "../../deploy/render-configs.mjs";
import { composeFile, composeRedisNodes, DEPLOY, parseYaml, redisValue, ROOT, type Y } from "../support/deploy-kit.js";

const execFileP = promisify(execFile);
const read = (...parts: string[]): string => readFileSync(join(ROOT, ...parts), "utf8");

const CONFIG_NAMES = new Set(Object.keys(CONFIG_VARIABLES));
const REQUIRED = ["XMPP_DOMAIN", "XMPP_SECRET", "ADMIN_TOKEN"];
/** Set in the image and the unit for Node itself, not read by the gateway's config. */
const NODE_VARS = new Set(["NODE_ENV"]);
const DEFAULT_SHUTDOWN_MS = loadConfig({ XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef", SMS_PROVIDER: "sandbox" }).SHUTDOWN_TIMEOUT_MS;

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
  const firstVirtualHost = prosody.search(/^VirtualHost /m);
  assert.ok(prosody.search(/^component_ports\b/m) < firstVirtualHost, "component block before the first VirtualHost");
  // kick_old, once, inside the Component section: the instance that takes the lease over replaces a
  // link whose host vanished (docs/facts/xmpp-servers.md "Prosody 0.12")
  const resolve = [...prosody.matchAll(/^\s*component_conflict_resolve\s*=\s*"(\w+)"/gm)];
  assert.deepEqual(
    resolve.map((m) => m[1]),
    ["kick_old"],
    'component_conflict_resolve = "kick_old", once',
  );
  const at = resolve[0]!.index;
  const component = prosody.search(new RegExp(`^Component "${env.XMPP_DOMAIN!.replace(/\./g, "\\.")}"`, "m"));
  assert.ok(component >= 0 && component < at && at < firstVirtualHost, "in the Component section");
  assert.ok(!/^(Component|VirtualHost)\b/m.test(prosody.slice(component + 1, at)), "no other section in between");

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

/** The gateways of the compose file: the services running the image built from deploy/Dockerfile. */
function composeGateways(compose: Y): [string, Y][] {
  return Object.entries(compose.services as Record<string, Y>).filter(([, svc]) => svc.image === "switchboard:local");
}

/** A compose gateway's environment: `environment` (interpolated with the file's defaults) over its env_file(s). */
function gatewayEnvironment(name: string, gw: Y): { environment: Record<string, string>; merged: Record<string, string> } {
  const envEntries: [string, string][] = Array.isArray(gw.environment)
    ? (gw.environment as string[]).map((e) => [e.split("=")[0]!, e.slice(e.indexOf("=") + 1)])
    : Object.entries(gw.environment as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  const environment = Object.fromEntries(envEntries.map(([k, v]) => [k, interpolate(v)]));
  assertKnownNames(Object.keys(environment), `docker-compose.yml ${name}.environment`);
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
  return { environment, merged: { ...fromFiles, ...environment } };
}

/** The named volume (of the compose file's `volumes:`) mounted at or above `dir` in a service, if any. */
function namedVolumeFor(compose: Y, svc: Y, dir: string): string | undefined {
  const mounts = ((svc.volumes ?? []) as string[]).map((v) => v.split(":"));
  const m = mounts.filter(([src, target]) => startsWithDir(dir, target!) && compose.volumes && src! in compose.volumes).sort((a, b) => b[1]!.length - a[1]!.length)[0];
  return m?.[0];
}

test("docker-compose.yml: two or more gateways by default, each its own instance, sharing the media", () => {
  const compose = composeFile();
  const services = compose.services as Record<string, Y>;
  const gateways = composeGateways(compose);
  assert.ok(gateways.length >= 2, `several gateways (found ${gateways.map(([n]) => n).join(", ")})`);

  const configs = new Map<string, Config>();
  for (const [name, gw] of gateways) {
    assert.equal(gw.profiles, undefined, `${name} runs by default`);
    const { environment, merged } = gatewayEnvironment(name, gw);
    for (const v of REQUIRED) assert.ok(merged[v], `${name} gets ${v}`);
    const config = loadConfig(merged);
    configs.set(name, config);
    assert.equal(environment.HTTP_HOST, "0.0.0.0", `${name} listens on all interfaces of its container`);
    assert.equal(config.SMS_PROVIDER, "twilio");
    assert.ok(environment.INSTANCE_ID, `${name} sets INSTANCE_ID (a container's host name changes when it is re-created)`);
    assert.ok(existsSync(join(DEPLOY, gw.build.context, gw.build.dockerfile)), `${name} is built from deploy/Dockerfile`);
    assert.equal(gw.read_only, true);
    // the published port reaches HTTP_PORT, on the host's loopback (the TLS proxy in front spreads PUBLIC_URL over them)
    const ports = (gw.ports as string[]).map(String);
    assert.equal(ports.length, 1, `${name} publishes one port`);
    assert.match(ports[0]!, /^127\.0\.0\.1:\d+:\d+$/, `${name} is published on the host's loopback only`);
    assert.equal(Number(ports[0]!.split(":").at(-1)), config.HTTP_PORT, `${name}: the published port reaches HTTP_PORT`);
    // a graceful stop (HTTP, the hand-over of the link, the workers) fits in the grace period
    assert.ok(Number(String(gw.stop_grace_period).replace(/s$/, "")) * 1000 > config.SHUTDOWN_TIMEOUT_MS, `${name}: stop_grace_period > SHUTDOWN_TIMEOUT_MS`);
  }

  const each = <T>(f: (name: string, c: Config) => T): T[] => [...configs].map(([n, c]) => f(n, c));
  const distinct = <T>(xs: T[]): boolean => new Set(xs).size === xs.length;
  assert.ok(distinct(each((_, c) => c.INSTANCE_ID)), "every gateway has its own INSTANCE_ID");
  assert.ok(distinct(gateways.map(([, gw]) => String(gw.ports[0]).split(":")[1])), "every gateway has its own host port");

  // the journal: a named volume of its own per gateway; the media: one named volume shared by all
  const journals = gateways.map(([name, gw]) => namedVolumeFor(compose, gw, configs.get(name)!.JOURNAL_DIR));
  const media = gateways.map(([name, gw]) => namedVolumeFor(compose, gw, configs.get(name)!.MEDIA_DIR));
  for (const [i, [name]] of gateways.entries()) {
    assert.ok(journals[i], `${name}: JOURNAL_DIR is on a named volume`);
    assert.ok(media[i], `${name}: MEDIA_DIR is on a named volume`);
  }
  assert.ok(distinct(journals), `a journal volume per gateway: ${journals.join(", ")}`);
  assert.equal(new Set(media).size, 1, `one media volume for all gateways: ${media.join(", ")}`);
  assert.ok(!journals.includes(media[0]), "the media volume is not a journal volume");
  for (const [name, gw] of gateways) {
    const others = Object.entries(services).filter(([n]) => n !== name);
    const journal = namedVolumeFor(compose, gw, configs.get(name)!.JOURNAL_DIR)!;
    for (const [other, svc] of others) {
      assert.ok(!((svc.volumes ?? []) as string[]).some((v) => v.split(":")[0] === journal), `${other} does not mount ${name}'s journal`);
    }
  }

  // the env file's commented-out sandbox alternative starts too, and only with its unsafe switch
  const merged = gatewayEnvironment(gateways[0]![0], gateways[0]![1]).merged;
  const example = readFileSync(join(DEPLOY, "compose", "switchboard.env.example"), "utf8");
  const alternative = parseEnvFile([...example.matchAll(/^# ((?:SMS_PROVIDER|SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN)=\S+)$/gm)].map((m) => m[1]).join("\n"));
  assert.deepEqual(alternative, { SMS_PROVIDER: "sandbox", SANDBOX_UNSAFE_ALLOW_PUBLIC_LISTEN: "true" });
  const { TWILIO_ACCOUNT_SID: _sid, TWILIO_AUTH_TOKEN: _token, ...withoutTwilio } = merged;
  assert.equal(loadConfig({ ...withoutTwilio, ...alternative }).SMS_PROVIDER, "sandbox");
  assert.throws(() => loadConfig({ ...withoutTwilio, SMS_PROVIDER: "sandbox" }), /HTTP_HOST: 0\.0\.0\.0 is not a loopback address/);
});

test("docker-compose.yml: Redis primary (AOF), a replica and three Sentinels; the gateways find the primary through them", () => {
  const compose = composeFile();
  const services = compose.services as Record<string, Y>;
  const nodes = composeRedisNodes(compose);
  const data = nodes.filter((n) => !n.sentinel);
  const sentinels = nodes.filter((n) => n.sentinel);
  assert.equal(data.length, 2, `a primary and a replica (found ${data.map((n) => n.service).join(", ")})`);
  assert.equal(sentinels.length, 3, `three Sentinels (found ${sentinels.map((n) => n.service).join(", ")})`);
  for (const n of nodes) assert.equal(services[n.service].profiles, undefined, `${n.service} runs by default`);

  // each node runs from a copy on a named volume of its own: Sentinel rewrites the files
  const volumes = nodes.map((n) => n.volume);
  assert.equal(new Set(volumes).size, volumes.length, `a volume per Redis node: ${volumes.join(", ")}`);
  for (const n of nodes) {
    assert.ok(n.volume in compose.volumes, `${n.service}: ${n.volume} is a named volume`);
    assert.equal(redisValue(n.conf, "dir")?.[0], n.runPath.slice(0, n.runPath.lastIndexOf("/")), `${n.service}: dir is the volume`);
    assert.ok(!redisValue(n.conf, "include"), `${n.service}: no include (a rewrite would duplicate what it includes)`);
  }

  // the data nodes: persistent, never evicting, announced by service name; the replica follows the primary
  const replica = data.find((n) => redisValue(n.conf, "replicaof"));
  const primary = data.find((n) => n !== replica);
  assert.ok(replica && primary, "one data node has replicaof, the other is the primary");
  for (const n of data) {
    assert.deepEqual(redisValue(n.conf, "appendonly"), ["yes"], `${n.service}: appendonly yes (a replica becomes the primary)`);
    assert.match(redisValue(n.conf, "appendfsync")?.[0] ?? "", /^(everysec|always)$/, `${n.service}: appendfsync`);
    assert.deepEqual(redisValue(n.conf, "maxmemory-policy"), ["noeviction"], `${n.service}: noeviction`);
    assert.deepEqual(redisValue(n.conf, "replica-announce-ip"), [n.service], `${n.service} announces its service name`);
  }
  const primaryPort = redisValue(primary.conf, "port")?.[0] ?? "6379";
  assert.deepEqual(redisValue(replica.conf, "replicaof"), [primary.service, primaryPort], "the replica follows the primary");

  // the Sentinels: one name, the primary, quorum 2 of 3, host names announced (resolved before the monitor line)
  const monitors = sentinels.map((s) => redisValue(s.conf, "sentinel", "monitor"));
  for (const [i, s] of sentinels.entries()) {
    const [name, host, port, quorum] = monitors[i] ?? [];
    assert.ok(name, `${s.service}: sentinel monitor`);
    assert.equal(host, primary.service, `${s.service} monitors the primary`);
    assert.equal(port, primaryPort);
    assert.equal(Number(quorum), 2, `${s.service}: quorum 2 (a majority of 3)`);
    assert.deepEqual(redisValue(s.conf, "sentinel", "announce-ip"), [s.service], `${s.service} announces its service name`);
    const line = (k: string): number => s.conf.find((d) => d.words[0] === "sentinel" && d.words[1] === k)?.line ?? Infinity;
    assert.ok(line("resolve-hostnames") < line("monitor") && line("announce-hostnames") < line("monitor"), `${s.service}: host names are on before the monitor line`);
    for (const k of ["resolve-hostnames", "announce-hostnames"]) assert.deepEqual(redisValue(s.conf, "sentinel", k), ["yes"]);
    assert.ok(Number(redisValue(s.conf, "sentinel", "down-after-milliseconds")?.[1]) > 0, `${s.service}: down-after-milliseconds`);
  }
  assert.equal(new Set(monitors.map((m) => m?.[0])).size, 1, "every Sentinel monitors the same name");
  const monitorName = monitors[0]![0]!;

  // the gateways ask exactly these Sentinels for that name, and wait for the replica
  for (const [name, gw] of composeGateways(compose)) {
    const config = loadConfig(gatewayEnvironment(name, gw).merged);
    const sentinelAddrs = sentinels.map((s) => `${s.service}:${redisValue(s.conf, "port")?.[0] ?? "26379"}`);
    assert.deepEqual([...(config.REDIS_SENTINELS ?? [])].sort(), sentinelAddrs.sort(), `${name}: REDIS_SENTINELS lists the three Sentinels`);
    assert.equal(config.REDIS_SENTINEL_NAME, monitorName, `${name}: REDIS_SENTINEL_NAME is the monitored name`);
    assert.ok(config.REDIS_MIN_REPLICAS >= 1, `${name}: REDIS_MIN_REPLICAS >= 1`);
    for (const s of sentinels) assert.equal(gw.depends_on?.[s.service]?.condition, "service_healthy", `${name} waits for ${s.service}`);
  }
  for (const n of nodes) {
    assert.equal(services[n.service].ports, undefined, `${n.service} is not published`);
    assert.deepEqual(services[n.service].networks, ["backend"], `${n.service} is on the internal network only`);
  }
});

test("docker-compose.yml: Prosody, an ejabberd profile, and the component link on an internal network", () => {
  const compose = composeFile();
  const services = compose.services as Record<string, Y>;
  for (const name of ["prosody", "ejabberd"]) assert.ok(services[name], `service ${name}`);
  assert.deepEqual(services.ejabberd.profiles, ["ejabberd"]);
  assert.equal(services.prosody.profiles, undefined, "the default stack runs Prosody");

  for (const [name, gw] of composeGateways(compose)) {
    const config = loadConfig(gatewayEnvironment(name, gw).merged);
    const xmpp = hostPort(config.XMPP_SERVICE);
    assert.equal(xmpp.host, "prosody", "default XMPP server: Prosody");
    const ejabberdXmpp = hostPort(interpolate(String(gw.environment.XMPP_SERVICE).replace(/\$\{SWITCHBOARD_XMPP_SERVER:-prosody\}/, "ejabberd")));
    for (const server of [xmpp.host, ejabberdXmpp.host]) {
      const shared = (services[server].networks as string[]).filter((n) => (gw.networks as string[]).includes(n));
      assert.ok(
        shared.some((n) => compose.networks[n]?.internal === true),
        `${server} and ${name} share an internal network`,
      );
    }
    for (const [svcName, svc] of Object.entries(services)) {
      for (const p of (svc.ports ?? []) as string[]) {
        assert.notEqual(Number(String(p).split(":").at(-1)), xmpp.port, `${svcName} does not publish the component port`);
      }
    }
  }

  // the XMPP servers mount the rendered configs
  assert.ok((services.prosody.volumes as string[]).includes("./compose/prosody.cfg.lua:/etc/prosody/prosody.cfg.lua:ro"));
  assert.ok((services.ejabberd.volumes as string[]).includes("./compose/ejabberd.yml:/opt/ejabberd/conf/ejabberd.yml:ro"));
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

test("k8s: several gateways in a StatefulSet: RollingUpdate, a PodDisruptionBudget, a preStop and grace period that let the link hand over", () => {
  const objects = k8sObjects().map((o) => o.obj);
  const byKind = (kind: string): Y[] => objects.filter((o) => o.kind === kind);
  assert.deepEqual(byKind("Deployment"), [], "the gateways run as a StatefulSet (stable names and journals), not a Deployment");
  const sts = byKind("StatefulSet").find((d) => d.metadata.name === "switchboard");
  assert.ok(sts, "StatefulSet switchboard");
  assert.ok(sts.spec.replicas >= 2, `replicas >= 2 (is ${sts.spec.replicas})`);
  assert.equal(sts.spec.updateStrategy?.type ?? "RollingUpdate", "RollingUpdate");
  assert.equal(sts.spec.updateStrategy?.rollingUpdate?.partition ?? 0, 0, "a rollout reaches every pod");
  assert.deepEqual(sts.spec.selector.matchLabels, sts.spec.template.metadata.labels);
  const labels = sts.spec.template.metadata.labels as Record<string, string>;
  const selects = (sel: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v);

  // voluntary disruptions leave at least one gateway, and can still go ahead
  const pdb = byKind("PodDisruptionBudget").find((p) => selects(p.spec.selector.matchLabels));
  assert.ok(pdb, "a PodDisruptionBudget selects the gateways");
  assert.equal(pdb.apiVersion, "policy/v1");
  if (pdb.spec.minAvailable !== undefined) {
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < sts.spec.replicas, "1 <= minAvailable < replicas");
  } else {
    assert.equal(pdb.spec.maxUnavailable, 1);
  }

  // the governing Service: headless, in the kit
  const governing = byKind("Service").find((s) => s.metadata.name === sts.spec.serviceName);
  assert.ok(governing, `Service ${sts.spec.serviceName} (serviceName) is in deploy/k8s`);
  assert.equal(governing.spec.clusterIP, "None", "the governing Service is headless");
  assert.ok(selects(governing.spec.selector));

  const pod = sts.spec.template.spec;
  const c = pod.containers[0];
  const env = podEnvironment(objects, c);
  const config = loadConfig(env);

  // INSTANCE_ID: each pod's own name, from nowhere else
  const instance = (c.env as Y[]).filter((e) => e.name === "INSTANCE_ID");
  assert.equal(instance.length, 1, "INSTANCE_ID is set once, in the pod's env");
  assert.equal(instance[0].valueFrom?.fieldRef?.fieldPath, "metadata.name", "INSTANCE_ID is the pod's name");
  assert.equal(env.INSTANCE_ID, undefined, "the ConfigMap and the Secret leave INSTANCE_ID to the pod (one value for all pods would be wrong)");
  assert.equal(loadConfig({ ...env, INSTANCE_ID: `${sts.metadata.name}-${sts.spec.replicas - 1}` }).INSTANCE_ID, `${sts.metadata.name}-${sts.spec.replicas - 1}`, "a pod name is a valid INSTANCE_ID");

  // SIGTERM after a preStop pause (the endpoints drop the pod first), then a graceful stop within the grace period
  const preStop = c.lifecycle?.preStop;
  assert.ok(preStop, "a preStop hook");
  const sleepSeconds = preStop.sleep ? Number(preStop.sleep.seconds) : Number(/^sleep (\d+)$/.exec((preStop.exec?.command as string[] | undefined)?.join(" ") ?? "")?.[1]);
  assert.ok(sleepSeconds >= 1 && sleepSeconds <= 30, `preStop sleeps a few seconds (${sleepSeconds})`);
  assert.ok(
    pod.terminationGracePeriodSeconds > sleepSeconds + config.SHUTDOWN_TIMEOUT_MS / 1000,
    `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) > preStop (${sleepSeconds}) + SHUTDOWN_TIMEOUT_MS (${config.SHUTDOWN_TIMEOUT_MS / 1000} s)`,
  );

  // the journal: a claim per pod (volumeClaimTemplates); the media: one claim every pod mounts, ReadWriteMany
  const volumeAt = (dir: string): { mount: Y; volume?: Y; template?: Y } => {
    const mount = (c.volumeMounts as Y[]).filter((m) => startsWithDir(dir, m.mountPath)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    assert.ok(mount, `a volume is mounted at ${dir}`);
    return {
      mount,
      volume: ((pod.volumes ?? []) as Y[]).find((v) => v.name === mount.name),
      template: ((sts.spec.volumeClaimTemplates ?? []) as Y[]).find((v) => v.metadata.name === mount.name),
    };
  };
  const journal = volumeAt(config.JOURNAL_DIR);
  assert.ok(journal.template && !journal.volume, `JOURNAL_DIR (${config.JOURNAL_DIR}) is on a claim of each pod's own (volumeClaimTemplates)`);
  assert.ok(journal.template.spec.resources.requests.storage, "the journal claim asks for storage");
  const media = volumeAt(config.MEDIA_DIR);
  assert.ok(media.volume?.persistentVolumeClaim && !media.template, `MEDIA_DIR (${config.MEDIA_DIR}) is on one claim shared by the pods`);
  const mediaClaim = byKind("PersistentVolumeClaim").find((p) => p.metadata.name === media.volume.persistentVolumeClaim.claimName);
  assert.ok(mediaClaim, "the media claim is in deploy/k8s");
  assert.deepEqual(mediaClaim.spec.accessModes, ["ReadWriteMany"], "the media claim is ReadWriteMany (every pod writes and serves it)");
  assert.notEqual(journal.mount.name, media.mount.name);

  // spread over nodes where possible
  assert.ok(
    ((pod.topologySpreadConstraints ?? []) as Y[]).some((t) => t.topologyKey === "kubernetes.io/hostname" && selects(t.labelSelector.matchLabels)) || pod.affinity?.podAntiAffinity,
    "the pods are spread over nodes",
  );
});

test("k8s: probes on /readyz and /healthz, known variables, a private component link", () => {
  const objects = k8sObjects().map((o) => o.obj);
  const byKind = (kind: string): Y[] => objects.filter((o) => o.kind === kind);
  const sts = byKind("StatefulSet").find((d) => d.metadata.name === "switchboard");
  const pod = sts.spec.template.spec;
  assert.equal(pod.enableServiceLinks, false);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  const env = podEnvironment(objects, c);
  for (const name of REQUIRED) assert.ok(env[name], `the pod gets ${name}`);
  const config = loadConfig(env);
  assert.equal(config.HTTP_HOST, "0.0.0.0");

  // ports and probes; readiness stays on /readyz (200 on every pod that can store, link holder or not)
  const http = (c.ports as Y[]).find((p) => p.name === "http");
  assert.equal(http.containerPort, config.HTTP_PORT, "containerPort http = HTTP_PORT");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
    assert.ok(probe.httpGet.port === "http" || probe.httpGet.port === config.HTTP_PORT, "probes use the HTTP port");
    assert.ok(["/readyz", "/healthz"].includes(probe.httpGet.path));
  }
  const labels = sts.spec.template.metadata.labels;
  const service = byKind("Service").find((s) => s.metadata.name === "switchboard");
  assert.ok(service.spec.ports.every((p: Y) => p.targetPort === "http" || p.targetPort === config.HTTP_PORT));
  assert.deepEqual(service.spec.selector, labels);
  assert.notEqual(service.spec.clusterIP, "None", "the traffic Service is not the headless one");

  // the component link: XMPP_SERVICE names a ClusterIP Service; no Service exposes that port outside
  const xmpp = hostPort(config.XMPP_SERVICE);
  const xmppService = byKind("Service").find((s) => s.metadata.name === xmpp.host);
  assert.ok(xmppService, `Service ${xmpp.host} is in deploy/k8s`);
  assert.equal(xmppService.spec.type ?? "ClusterIP", "ClusterIP");
  assert.ok(xmppService.spec.ports.some((p: Y) => p.port === xmpp.port));
  for (const s of byKind("Service")) assert.equal(s.spec.type ?? "ClusterIP", "ClusterIP", `${s.metadata.name} stays inside the cluster`);
});

/** The container's environment: the ConfigMap and the Secret it names, then its env entries with a literal value. */
function podEnvironment(objects: Y[], c: Y): Record<string, string> {
  const byKind = (kind: string): Y[] => objects.filter((o) => o.kind === kind);
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
    assertKnownNames([e.name], "the container's env");
    if (typeof e.value === "string") env[e.name] = e.value;
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

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
  assert.deepEqual(kinds, ["ConfigMap", "Namespace", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "Secret", "Service", "Service", "Service", "StatefulSet"]);
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

const UNITS = ["switchboard.service", "switchboard@.service"] as const;

function unitFile(name: (typeof UNITS)[number]): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of read("deploy", "systemd", name).split("\n")) {
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

/** ExecStart= as `[/usr/bin/env NAME=value …] program args…`: the variables it sets, and the rest. */
function execStart(value: string): { vars: Record<string, string>; command: string[] } {
  const words = value.split(/\s+/);
  const vars: Record<string, string> = {};
  if (words[0] === "/usr/bin/env") {
    words.shift();
    while (/^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? "")) {
      const w = words.shift()!;
      vars[w.slice(0, w.indexOf("="))] = w.slice(w.indexOf("=") + 1);
    }
  }
  return { vars, command: words };
}

/** The settings a unit gives the gateway: Environment= lines, then variables on ExecStart's command line (those win). */
function unitEnvironment(svc: Map<string, string[]>): Record<string, string> {
  const env = Object.fromEntries((svc.get("Environment") ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  return { ...env, ...execStart(svc.get("ExecStart")!.at(-1)!).vars };
}

for (const name of UNITS) {
  test(`systemd ${name}: hardened, restarts on failure, stops within SHUTDOWN_TIMEOUT_MS`, () => {
    const unit = unitFile(name);
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
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(one(key), value, `${key}=${value}`);
    assert.equal(svc.get("EnvironmentFile")?.[0], "/etc/switchboard/env", "the shared settings in /etc/switchboard/env");
    assert.ok(svc.get("SystemCallFilter")?.includes("@system-service"), "SystemCallFilter=@system-service");
    assert.match(one("MemoryMax") ?? "", /^\d+[KMG]?$/, "MemoryMax");
    assert.ok(one("DynamicUser") === "yes" || (one("User") && one("User") !== "root"), "runs as a dedicated or dynamic user");

    const exec = execStart(one("ExecStart")!).command.join(" ");
    assert.match(exec, /^\/usr\/bin\/node --max-old-space-size=160 --max-semi-space-size=8 \S*dist\/src\/main\.js$/);

    // the defaults the unit sets: known names; JOURNAL_DIR and MEDIA_DIR are writable
    const env = unitEnvironment(svc);
    assertKnownNames(Object.keys(env), `systemd ${name} Environment= and ExecStart=`, NODE_VARS);
    const writable = (svc.get("ReadWritePaths") ?? []).flatMap((v) => v.split(/\s+/));
    for (const dir of [env.JOURNAL_DIR, env.MEDIA_DIR]) {
      assert.ok(dir && writable.some((w) => startsWithDir(dir, w)), `${dir} is under ReadWritePaths`);
    }
    const stopSec = Number(one("TimeoutStopSec"));
    assert.ok(stopSec * 1000 > DEFAULT_SHUTDOWN_MS && stopSec * 1000 <= DEFAULT_SHUTDOWN_MS + 30_000, "TimeoutStopSec a bit above SHUTDOWN_TIMEOUT_MS");
    // instances on several hosts share one Redis: no fixed INSTANCE_ID (the default is the host name)
    assert.ok(env.INSTANCE_ID === undefined || /%[lHi]/.test(env.INSTANCE_ID), "INSTANCE_ID is not one fixed name");
  });
}

test("systemd switchboard@.service: one instance per %i, with its own INSTANCE_ID, journal and port, sharing the media; hardened like switchboard.service", () => {
  const single = unitFile("switchboard.service").get("Service")!;
  const template = unitFile("switchboard@.service").get("Service")!;
  const env = unitEnvironment(template);
  const vars = execStart(template.get("ExecStart")!.at(-1)!).vars;

  // what makes an instance is on ExecStart's command line, where no EnvironmentFile= can override it
  assert.match(vars.INSTANCE_ID ?? "", /%i/, "INSTANCE_ID on the command line, with the instance name");
  assert.match(vars.JOURNAL_DIR ?? "", /\/%i\//, "JOURNAL_DIR on the command line, in a directory of the instance");
  const expand = (s: string, host: string, i: string): string => s.replace(/%[lH]/g, host).replace(/%i/g, i);
  const ids = ["1", "2"].map(
    (i) => loadConfig({ XMPP_DOMAIN: "sms.example.com", XMPP_SECRET: "s", ADMIN_TOKEN: "0123456789abcdef", SMS_PROVIDER: "sandbox", INSTANCE_ID: expand(vars.INSTANCE_ID!, "gw-host", i) }).INSTANCE_ID,
  );
  assert.notEqual(ids[0], ids[1], "two instances get two INSTANCE_IDs (valid ones)");
  assert.ok(!/%i/.test(env.MEDIA_DIR ?? "%i"), "MEDIA_DIR is shared by the instances");
  assert.equal(env.MEDIA_DIR, unitEnvironment(single).MEDIA_DIR, "the same media directory as switchboard.service");
  assert.deepEqual(template.get("EnvironmentFile"), ["/etc/switchboard/env", "/etc/switchboard/%i.env"], "the shared settings, then the instance's own (required; a later file wins)");
  const states = (template.get("StateDirectory") ?? []).flatMap((v) => v.split(/\s+/));
  assert.ok(states.includes("switchboard/%i"), "StateDirectory=switchboard/%i");
  const writable = (template.get("ReadWritePaths") ?? []).flatMap((v) => v.split(/\s+/));
  assert.ok(!writable.includes("/var/lib/switchboard"), "an instance cannot write the other instances' journals");

  // every other setting of the [Service] section, the hardening included, is the single unit's
  const own = new Set(["ExecStart", "Environment", "EnvironmentFile", "StateDirectory", "ReadWritePaths"]);
  const rest = (s: Map<string, string[]>) => Object.fromEntries([...s].filter(([k]) => !own.has(k)));
  assert.deepEqual(rest(template), rest(single));
  assert.match(unitFile("switchboard@.service").get("Unit")!.get("Description")!.at(-1)!, /%i/, "the description names the instance");
});

for (const name of UNITS) {
  test(`systemd ${name}: systemd-analyze verify (when systemd-analyze is installed)`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "sb-unit-"));
    try {
      // verify checks that ExecStart's binary exists: use this machine's node; a template is checked as an instance
      const file = name.replace("@.", "@1.");
      const unitPath = join(dir, file);
      writeFileSync(unitPath, read("deploy", "systemd", name).replace(/^(ExecStart=(?:\/usr\/bin\/env (?:[A-Z_]+=\S+ )*)?)\/usr\/bin\/node /m, `$1${process.execPath} `));
      let stderr: string;
      try {
        ({ stderr } = await execFileP("systemd-analyze", ["verify", unitPath], { timeout: 60_000 }));
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string };
        if (e.code === "ENOENT") return t.skip("systemd-analyze is not installed");
        assert.fail(`systemd-analyze verify failed:\n${e.stderr ?? e.message}`);
      }
      const about = stderr.split("\n").filter((l) => l.includes(file));
      assert.deepEqual(about, [], "no warnings about the unit (unknown keys or values are only warnings)");

      // exposure score (systemd >= 250 can score a unit file offline); lower is better, 10 = unprotected
      try {
        const { stdout } = await execFileP("systemd-analyze", ["security", "--offline=yes", "--no-pager", unitPath], { timeout: 60_000 });
        const m = new RegExp(`Overall exposure level for ${file.replace(/[.@]/g, "\\$&")}: ([\\d.]+)`).exec(stdout);
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
}
