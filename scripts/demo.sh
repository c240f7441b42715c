#!/usr/bin/env bash
# Switchboard demo: a complete local setup with no Twilio account.
#
#   bash scripts/demo.sh        (or: npm run demo)
#
# Starts Redis and Prosody in a temporary directory (loopback only), the gateway with the sandbox SMS
# provider, creates a Jabber account demo@localhost linked to the number +15550001111, and prints how
# to log in and how to make an SMS arrive. Ctrl-C stops everything it started and removes the
# temporary directory.
#
# Environment (mostly for tests):
#   DEMO_C2S_PORT    client port of Prosody (default 5222 if free, else a free port; 0 = a free port)
#   DEMO_HTTP_PORT   HTTP port of the gateway (default 8080 if free, else a free port; 0 = a free port)
#   DEMO_NO_INSTALL  1 = skip `npm ci` and `npm run build` (dist/ must exist)
# Once ready it prints one machine-readable line:
#   DEMO_READY {"jid":…,"password":…,"c2sPort":…,"httpPort":…,"adminToken":…,"contact":…,
#               "redisPort":…,"componentPort":…,"dir":…,"pids":{"redis":…,"prosody":…,"gateway":…}}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

XMPP_HOST="localhost"
COMPONENT_DOMAIN="sms.localhost"
DEMO_USER="demo"
DEMO_JID="$DEMO_USER@$XMPP_HOST"
DEMO_PHONE="+15550001111"
CONTACT_PHONE="+15552223333"
CONTACT_JID="$CONTACT_PHONE@$COMPONENT_DOMAIN"

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# ---- 1. system packages -------------------------------------------------------------------------
command -v node >/dev/null || die "node is not installed (Node 20 or newer is required)"
missing=()
command -v prosody >/dev/null || missing+=(prosody)
command -v prosodyctl >/dev/null || { [[ " ${missing[*]-} " == *" prosody "* ]] || missing+=(prosody); }
command -v redis-server >/dev/null || missing+=(redis-server)
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]]; then
    say "installing ${missing[*]} with apt-get…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
    # The packages start their system services; the demo runs its own instances.
    service prosody stop >/dev/null 2>&1 || true
    service redis-server stop >/dev/null 2>&1 || true
  else
    die "missing packages: ${missing[*]}. Install them (sudo apt-get install ${missing[*]}) or run this script as root."
  fi
fi

# ---- 2. npm dependencies and build --------------------------------------------------------------
if [[ "${DEMO_NO_INSTALL:-}" == 1 ]]; then
  [[ -f dist/src/main.js ]] || die "dist/src/main.js is missing: run npm run build (or unset DEMO_NO_INSTALL)"
else
  if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    say "installing npm dependencies (npm ci)…"
    npm ci --no-audit --no-fund
  fi
  say "building (npm run build)…"
  npm run build --silent
fi

# ---- helpers (node one-liners: no extra tools needed) ---------------------------------------------
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})'
}
port_is_free() {
  node -e 'const s=require("net").createServer();s.once("error",()=>process.exit(1));s.listen(+process.argv[1],"127.0.0.1",()=>s.close(()=>process.exit(0)))' "$1"
}
port_open() {
  node -e 'const c=require("net").connect(+process.argv[1],"127.0.0.1");c.once("connect",()=>{c.destroy();process.exit(0)});c.once("error",()=>process.exit(1));setTimeout(()=>process.exit(1),1000)' "$1"
}
random_hex() {
  node -e 'process.stdout.write(require("crypto").randomBytes(+process.argv[1]).toString("hex"))' "$1"
}
# pick_port <requested> <preferred> sets PICKED: requested "" → preferred if free, else a free port;
# "0" → a free port; N → N (which must be free).
USED_PORTS=" "
PICKED=""
pick_port() {
  local requested="$1" preferred="$2" p
  if [[ -n "$requested" && "$requested" != 0 ]]; then
    [[ "$requested" =~ ^[0-9]+$ ]] || die "not a port number: $requested"
    port_is_free "$requested" || die "port $requested is already in use"
    p="$requested"
  elif [[ -z "$requested" && -n "$preferred" ]] && port_is_free "$preferred"; then
    p="$preferred"
  else
    p="$(free_port)"
    while [[ "$USED_PORTS" == *" $p "* ]]; do p="$(free_port)"; done
  fi
  USED_PORTS+="$p "
  PICKED="$p"
}

# ---- 3. temp dir, children, cleanup ---------------------------------------------------------------
# Each child runs in its own session (setsid), so a Ctrl-C in the terminal reaches only this script,
# which then stops them in order: the gateway first (it uses the others), then Prosody, then Redis.
command -v setsid >/dev/null || die "setsid (util-linux) is missing"
umask 077
DEMO_TMP="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-demo.XXXXXX")"
REDIS_PID="" PROSODY_PID="" GATEWAY_PID=""
REDIS_LOG="$DEMO_TMP/redis.log"
PROSODY_LOG="$DEMO_TMP/prosody/prosody.log"
PROSODY_CONSOLE="$DEMO_TMP/prosody/console.log"
GATEWAY_LOG="$DEMO_TMP/gateway.log"
CLEANED=0

stop_pid() { # stop_pid <pid> <name> <seconds>: SIGTERM, then SIGKILL after the grace time
  local pid="$1" name="$2" secs="$3" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in ${secs}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  ((CLEANED)) && return 0
  CLEANED=1
  trap '' INT TERM HUP
  # The gateway first (it uses the others), then the XMPP server, then Redis.
  stop_pid "$GATEWAY_PID" gateway 15
  stop_pid "$PROSODY_PID" prosody 10
  stop_pid "$REDIS_PID" redis-server 10
  rm -rf "$DEMO_TMP"
}
on_signal() {
  printf '\n'
  say "stopping…"
  cleanup
  say "stopped; removed $DEMO_TMP"
  exit 0
}
trap on_signal INT TERM HUP
trap cleanup EXIT

# Prints the end of a child's log(s) when it died.
died() { # died <name> <log files…>
  local name="$1" f
  shift
  printf 'demo: %s exited unexpectedly; stopping the demo. The end of its log:\n' "$name" >&2
  for f in "$@"; do
    [[ -s "$f" ]] && { printf -- '--- %s\n' "$f" >&2; tail -n 30 "$f" >&2; }
  done
  return 0
}
check_alive() {
  if [[ -n "$REDIS_PID" ]] && ! kill -0 "$REDIS_PID" 2>/dev/null; then died redis-server "$REDIS_LOG"; exit 1; fi
  if [[ -n "$PROSODY_PID" ]] && ! kill -0 "$PROSODY_PID" 2>/dev/null; then died prosody "$PROSODY_LOG" "$PROSODY_CONSOLE"; exit 1; fi
  if [[ -n "$GATEWAY_PID" ]] && ! kill -0 "$GATEWAY_PID" 2>/dev/null; then died gateway "$GATEWAY_LOG"; exit 1; fi
  return 0
}
wait_port() { # wait_port <port> <what> <seconds>
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    check_alive
    port_open "$1" && return 0
    sleep 0.2
  done
  die "$2 did not open port $1 within $3 s"
}

pick_port "${DEMO_C2S_PORT:-}" 5222 && C2S_PORT="$PICKED"
pick_port "${DEMO_HTTP_PORT:-}" 8080 && HTTP_PORT="$PICKED"
pick_port 0 "" && COMPONENT_PORT="$PICKED"
pick_port 0 "" && REDIS_PORT="$PICKED"
SECRET="$(random_hex 24)"
PASSWORD="$(random_hex 12)"
ADMIN_TOKEN="$(random_hex 24)"

# ---- 4. Redis ---------------------------------------------------------------------------------------
mkdir -p "$DEMO_TMP/redis"
say "starting redis-server on 127.0.0.1:$REDIS_PORT"
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --daemonize no \
  --appendonly yes --dir "$DEMO_TMP/redis" --save "" --logfile "$REDIS_LOG" >/dev/null 2>&1 &
REDIS_PID=$!
wait_port "$REDIS_PORT" redis-server 10

# ---- 5. Prosody --------------------------------------------------------------------------------------
P="$DEMO_TMP/prosody"
mkdir -p "$P/data" "$P/certs"
COMPONENT_CFG="$(node deploy/templates/render.mjs prosody-component.cfg.lua.tmpl \
  COMPONENT_PORT="$COMPONENT_PORT" COMPONENT_INTERFACE=127.0.0.1 XMPP_DOMAIN="$COMPONENT_DOMAIN" XMPP_SECRET="$SECRET")"
cat >"$P/prosody.cfg.lua" <<EOF
-- Generated by scripts/demo.sh for a throw-away local demo. Not a production configuration.
run_as_root = true
pidfile = "$P/prosody.pid"
data_path = "$P/data"
certificates = "$P/certs"
log = { info = "$PROSODY_LOG" }

interfaces = { "127.0.0.1" }
c2s_ports = { $C2S_PORT }
modules_disabled = { "s2s" }
-- Loopback only: no TLS, so passwords are accepted over the plain connection.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "version"; "offline" }

-- The component (rendered from deploy/templates/prosody-component.cfg.lua.tmpl)
$COMPONENT_CFG

VirtualHost "$XMPP_HOST"
EOF
prosodyctl --config "$P/prosody.cfg.lua" register "$DEMO_USER" "$XMPP_HOST" "$PASSWORD" >"$P/register.log" 2>&1 ||
  { cat "$P/register.log" >&2; die "prosodyctl register failed"; }
say "starting prosody (client port 127.0.0.1:$C2S_PORT, component port 127.0.0.1:$COMPONENT_PORT)"
setsid prosody --config "$P/prosody.cfg.lua" -F >"$PROSODY_CONSOLE" 2>&1 &
PROSODY_PID=$!
wait_port "$C2S_PORT" prosody 15
wait_port "$COMPONENT_PORT" prosody 15

# ---- 6. the gateway -----------------------------------------------------------------------------------
say "starting the gateway on http://127.0.0.1:$HTTP_PORT (log: $GATEWAY_LOG)"
# Runs from the temp dir so that a .env of the checkout does not leak into the demo.
(
  cd "$DEMO_TMP"
  exec setsid env -u TWILIO_ACCOUNT_SID -u TWILIO_AUTH_TOKEN -u TWILIO_API_URL -u PUBLIC_URL \
    XMPP_SERVICE="xmpp://127.0.0.1:$COMPONENT_PORT" XMPP_DOMAIN="$COMPONENT_DOMAIN" XMPP_SECRET="$SECRET" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" HTTP_HOST=127.0.0.1 HTTP_PORT="$HTTP_PORT" \
    ADMIN_TOKEN="$ADMIN_TOKEN" SMS_PROVIDER=sandbox LOG_LEVEL=info \
    node "$ROOT/dist/src/main.js"
) >"$GATEWAY_LOG" 2>&1 &
GATEWAY_PID=$!

BASE="http://127.0.0.1:$HTTP_PORT"
ready=0
for ((i = 0; i < 150; i++)); do
  check_alive
  # /readyz shows the component link only with the admin token.
  if node -e 'fetch(process.argv[1],{headers:{authorization:"Bearer "+process.argv[2]}}).then(r=>r.json()).then(b=>process.exit(b?.xmpp?.connected===true?0:1),()=>process.exit(1))' "$BASE/readyz" "$ADMIN_TOKEN"; then
    ready=1
    break
  fi
  sleep 0.2
done
((ready)) || { died gateway "$GATEWAY_LOG"; die "the gateway did not connect to Prosody within 30 s"; }

# ---- 7. link the demo user to its number --------------------------------------------------------------
node -e '
const [url, token, phone] = process.argv.slice(1);
fetch(url, { method: "PUT", headers: { authorization: "Bearer " + token, "content-type": "application/json" }, body: JSON.stringify({ phone }) })
  .then(async (r) => { if (r.status !== 200 && r.status !== 201) { console.error(r.status, await r.text()); process.exit(1); } })
  .catch((e) => { console.error(e.message); process.exit(1); });
' "$BASE/api/v1/users/$DEMO_JID" "$ADMIN_TOKEN" "$DEMO_PHONE" || die "linking $DEMO_JID to $DEMO_PHONE failed"

# ---- 8. tell the user -----------------------------------------------------------------------------------
cat <<EOF

=====================================================================================
 Switchboard demo is running (sandbox SMS provider: no real SMS leaves this machine)
=====================================================================================

 Jabber login     JID:      $DEMO_JID
                  password: $PASSWORD
                  server:   127.0.0.1 port $C2S_PORT  (no TLS on loopback: allow a plain connection)
 Your number      $DEMO_PHONE  (linked to $DEMO_JID)
 Text this        $CONTACT_JID

 With profanity:
   /connect $DEMO_JID server 127.0.0.1 port $C2S_PORT tls disable
   /msg $CONTACT_JID Hello from XMPP

 The SMS the gateway "sent":
   curl -s -H 'Authorization: Bearer $ADMIN_TOKEN' $BASE/sandbox/messages

 Make an SMS arrive (shows up in your chat from $CONTACT_JID):
   curl -s -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' \\
     -d '{"from":"$CONTACT_PHONE","to":"$DEMO_PHONE","body":"Hi from the sandbox"}' $BASE/sandbox/sms

 Web phone        $BASE/sandbox  (enter the admin token below; text $DEMO_PHONE from any number)
 Admin token      $ADMIN_TOKEN
 Health           curl -s -H 'Authorization: Bearer $ADMIN_TOKEN' $BASE/readyz
 Gateway log      $GATEWAY_LOG

 Ctrl-C stops Redis, Prosody and the gateway and removes $DEMO_TMP
=====================================================================================

EOF
node -e '
const [jid, password, c2sPort, httpPort, adminToken, contact, redisPort, componentPort, dir, redis, prosody, gateway] = process.argv.slice(1);
console.log("DEMO_READY " + JSON.stringify({ jid, password, c2sPort: +c2sPort, httpPort: +httpPort, adminToken, contact,
  redisPort: +redisPort, componentPort: +componentPort, dir, pids: { redis: +redis, prosody: +prosody, gateway: +gateway } }));
' "$DEMO_JID" "$PASSWORD" "$C2S_PORT" "$HTTP_PORT" "$ADMIN_TOKEN" "$CONTACT_JID" "$REDIS_PORT" "$COMPONENT_PORT" "$DEMO_TMP" \
  "$REDIS_PID" "$PROSODY_PID" "$GATEWAY_PID"

# ---- 9. supervise: any child that dies takes the demo down --------------------------------------------
while :; do
  wait -n "$REDIS_PID" "$PROSODY_PID" "$GATEWAY_PID" || true
  check_alive
done
