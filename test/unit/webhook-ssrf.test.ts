import assert from "node:assert/strict";
import { test } from "node:test";
import { checkWebhookUrl, classifyAddress, isLocalhostName, type Resolver } from "../../src/adapters/webhook/ssrf.js";
import { GatewayError } from "../../src/errors.js";

const forbidden: Record<string, string> = {
  "127.0.0.1": "loopback",
  "127.255.0.9": "loopback",
  "::1": "loopback",
  "0.0.0.0": "unspecified",
  "::": "unspecified",
  "169.254.169.254": "linkLocal",
  "fe80::1": "linkLocal",
  "fe80::1%eth0": "linkLocal",
  "10.0.0.1": "private",
  "172.16.0.1": "private",
  "172.31.255.254": "private",
  "192.168.1.1": "private",
  "100.64.0.1": "carrierGradeNat",
  "fc00::1": "uniqueLocal",
  "fd12:3456::1": "uniqueLocal",
  "224.0.0.1": "multicast",
  "ff02::1": "multicast",
  "255.255.255.255": "broadcast",
  "240.0.0.1": "reserved",
  "192.0.2.10": "reserved",
  "2001:db8::1": "reserved",
  "::ffff:127.0.0.1": "ipv4Mapped:loopback",
  "::ffff:7f00:1": "ipv4Mapped:loopback",
  "::ffff:10.0.0.1": "ipv4Mapped:private",
  "::ffff:169.254.169.254": "ipv4Mapped:linkLocal",
  "::7f00:1": "ipv4Compatible:loopback",
  "::ffff:0:192.168.0.1": "rfc6145:private",
  "64:ff9b::10.0.0.1": "nat64:private",
  "64:ff9b::7f00:1": "nat64:loopback",
  "2002:7f00:1::": "6to4:loopback",
  "2002:c0a8:101::1": "6to4:private",
  "2001::1": "teredo",
  "fec0::1": "deprecatedSiteLocal",
  "100::1": "discard",
};

test("forbidden address ranges", () => {
  for (const [address, range] of Object.entries(forbidden)) {
    assert.deepEqual(classifyAddress(address), { allowed: false, range }, address);
  }
});

test("mixed notation of IPv4-compatible addresses is refused too", () => {
  // ipaddr.js reads "::127.0.0.1" as IPv4-mapped; either way the embedded IPv4 address is judged.
  assert.equal(classifyAddress("::127.0.0.1").allowed, false);
  assert.equal(classifyAddress("::10.0.0.1").allowed, false);
});

test("public addresses are allowed, including public IPv4 inside IPv6 forms", () => {
  for (const address of [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700::1",
    "2a00:1450:4001:82a::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::8.8.8.8",
    "2002:5db8:d822::1",
  ]) {
    assert.equal(classifyAddress(address).allowed, true, address);
  }
});

test("garbage and non-canonical forms are not addresses", () => {
  for (const bad of ["", "localhost", "0x7f.1", "127.1", "1.2.3.4.5", "[::1", "::ffff:999.0.0.1"]) {
    assert.equal(classifyAddress(bad).allowed, false, bad);
  }
});

test("localhost names", () => {
  for (const name of ["localhost", "LOCALHOST", "localhost.", "app.localhost", "a.b.localhost"]) assert.equal(isLocalhostName(name), true, name);
  for (const name of ["localhost.example.com", "mylocalhost", "example.com"]) assert.equal(isLocalhostName(name), false, name);
});

const fakeDns: Resolver = async (host) => {
  const table: Record<string, { address: string; family: number }[]> = {
    "hooks.example.com": [
      { address: "93.184.216.34", family: 4 },
      { address: "2606:4700::1", family: 6 },
    ],
    "internal.example.com": [{ address: "10.1.2.3", family: 4 }],
    "split.example.com": [
      { address: "93.184.216.34", family: 4 },
      { address: "::ffff:127.0.0.1", family: 6 },
    ],
  };
  const found = table[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  return found;
};

async function refused(url: string, resolve?: Resolver): Promise<string> {
  try {
    await checkWebhookUrl(url, false, resolve);
  } catch (e) {
    assert.ok(e instanceof GatewayError, String(e));
    assert.equal(e.code, "bad_request");
    assert.equal(e.field, "url");
    return e.userText;
  }
  assert.fail(`${url} was accepted`);
}

test("checkUrl refuses private targets, bad schemes and unresolvable hosts, naming the field url", async () => {
  assert.match(await refused("http://localhost:1/"), /localhost.*loopback/);
  assert.match(await refused("http://app.localhost/"), /loopback/);
  assert.match(await refused("http://127.0.0.1/"), /127\.0\.0\.1 is a loopback address/);
  assert.match(await refused("http://[::ffff:127.0.0.1]/"), /ipv4Mapped:loopback/);
  assert.match(await refused("http://[::ffff:7f00:1]/"), /ipv4Mapped:loopback/);
  assert.match(await refused("http://[::1]:8080/"), /loopback/);
  assert.match(await refused("http://10.1.2.3/hook"), /private/);
  assert.match(await refused("http://169.254.169.254/latest/meta-data/"), /linkLocal/);
  assert.match(await refused("http://0x7f.1/"), /127\.0\.0\.1/, "WHATWG URL parsing normalizes IPv4 shorthands");
  assert.match(await refused("http://2130706433/"), /127\.0\.0\.1/);
  assert.match(await refused("ftp://x/"), /http or https/);
  assert.match(await refused("file:///etc/passwd"), /http or https/);
  assert.match(await refused("not a url"), /absolute/);
  assert.match(await refused("https://internal.example.com/", fakeDns), /resolves to 10\.1\.2\.3 \(private\)/);
  assert.match(await refused("https://split.example.com/", fakeDns), /::ffff:127\.0\.0\.1/, "one bad address among good ones is enough");
  assert.match(await refused("https://nowhere.example.com/", fakeDns), /could not be resolved \(ENOTFOUND\)/);
});

test("checkUrl with the system resolver: a name that resolves to loopback (via /etc/hosts) is refused", async () => {
  // `localhost` is refused by name already; this exercises the resolution path with real getaddrinfo.
  const { lookup } = await import("node:dns/promises");
  const { hostname } = await import("node:os");
  const name = hostname();
  const addrs = await lookup(name, { all: true }).catch(() => []);
  if (addrs.length === 0 || !addrs.every((a) => !classifyAddress(a.address).allowed)) return; // no such name here
  assert.match(await refused(`http://${name}:8080/`), /resolves to/);
});

test("checkUrl accepts public targets, and anything http(s) when private targets are allowed", async () => {
  await checkWebhookUrl("https://hooks.example.com/bot?token=x", false, fakeDns);
  await checkWebhookUrl("http://93.184.216.34/", false);
  await checkWebhookUrl("http://[2606:4700::1]/", false);
  for (const url of ["http://localhost:1/", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://10.1.2.3/"]) {
    await checkWebhookUrl(url, true);
  }
  await assert.rejects(checkWebhookUrl("ftp://x", true), (e: unknown) => e instanceof GatewayError && e.field === "url");
});
