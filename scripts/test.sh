#!/usr/bin/env bash
# The test command (README, CI: .ci/run). On a fresh Debian 12 it installs what the tests run for
# real (apt-get, when root): Redis, Prosody, ejabberd, the slixmpp client stack and Chromium (the
# web phone's browser test, driven by playwright-core); then: npm ci,
# npm run build (type-check), npm run lint (ESLint; a violation fails the run), npm test.
#
#   bash scripts/test.sh                    # every test; integration tests on Prosody AND ejabberd,
#                                           # the interop matrix (servers x client stacks)
#   bash scripts/test.sh harness unit/      # only test files whose path contains a filter
#   XMPP_SERVERS=prosody bash scripts/test.sh
#       # integration tests on Prosody only (the interop matrix still uses both servers)
#
# ejabberd's tests need root (ejabberdctl runs the node as the ejabberd user).
set -euo pipefail
cd "$(dirname "$0")/.."

export XMPP_SERVERS="${XMPP_SERVERS:-${XMPP_SERVER:-prosody ejabberd}}"
unset XMPP_SERVER

say() { printf 'test.sh: %s\n' "$*" >&2; }

# --- node ---------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "node and npm (Node.js >= 20.10) are required and not on PATH"
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  say "Node.js >= 20.10 is required, found $(node --version)"
  exit 1
fi

# --- system packages: binary -> Debian package --------------------------------------------
# ejabberd and python3-slixmpp are needed whatever XMPP_SERVERS says: the interop matrix
# (test/interop/) runs on both servers with both client stacks.
# chromium: test/integration/web-phone.test.ts drives Debian's /usr/bin/chromium (headless).
required=("redis-server:redis-server" "prosodyctl:prosody" "prosody:prosody" "ejabberdctl:ejabberd" "chromium:chromium")
for server in $XMPP_SERVERS; do
  case "$server" in
    prosody|ejabberd) ;;
    *) say "unknown XMPP server '$server' in XMPP_SERVERS (prosody, ejabberd)"; exit 1 ;;
  esac
done

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
for pair in "${required[@]}"; do
  bin="${pair%%:*}" pkg="${pair##*:}"
  if ! have "$bin"; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done
# the second client stack: slixmpp, importable by Debian's own python
if ! /usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1; then
  missing+=("python3-slixmpp")
fi

stop_service() {
  # Debian starts a package's service on install; the tests run their own instances.
  if command -v service >/dev/null 2>&1; then
    service "$1" stop >/dev/null 2>&1 || true
  elif command -v invoke-rc.d >/dev/null 2>&1; then
    invoke-rc.d "$1" stop >/dev/null 2>&1 || true
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages: ${missing[*]}"
    say "install them first:  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  for pkg in "${missing[@]}"; do say "installing $pkg with apt-get"; done
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for pkg in "${missing[@]}"; do
    case "$pkg" in
      redis-server) stop_service redis-server ;;
      prosody) stop_service prosody ;;
      ejabberd)
        stop_service ejabberd
        # the package's start left the system epmd running; the tests don't use it
        if command -v epmd >/dev/null 2>&1; then epmd -kill >/dev/null 2>&1 || true; fi
        ;;
    esac
  done
fi

# --- build and test -----------------------------------------------------------------------
say "npm ci"
npm ci --no-audit --no-fund --loglevel=error
say "npm run build (type-check + build)"
npm run --silent build

say "npm run lint"
if ! npm run --silent lint; then
  say "lint failed: the problems are listed above. 'npm run lint -- --fix' fixes what ESLint can fix by itself, 'npm run format' rewrites the formatting (Prettier); fix the rest by hand"
  exit 1
fi

say "npm test (integration tests on: $XMPP_SERVERS)"
npm test --silent -- "$@"
say "all tests passed"
