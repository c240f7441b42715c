// The web phone (GET /sandbox): one dependency-free page that shows the sandbox provider's messages as
// chat threads (sandbox number ⇄ outside number), live from GET /sandbox/events, and texts a linked
// XMPP user from any number through POST /sandbox/sms. The admin token is asked for once, kept in the
// tab's sessionStorage and sent as a bearer token; it never goes into a URL. The page is a string here
// (not an .html file) so `npm run build` output needs nothing copied beside it. Script and style are
// inline, allowed by their hashes in the Content-Security-Policy and by nothing else.
import { createHash } from "node:crypto";

// String.raw: the script's own backslashes (regexes, "\n") reach the browser as written. It must
// contain no backtick and no dollar-brace.
const STYLE = String.raw`
:root { color-scheme: light dark; --mine: #0b6efd; --theirs: #e5e5ea; --theirs-fg: #111; --line: #ccc8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; height: 100vh; display: flex; flex-direction: column; }
header { display: flex; gap: 1rem; align-items: center; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; flex: 1; }
#live { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; background: #c33; color: #fff; }
#live.on { background: #1a7f37; }
#login { margin: 3rem auto; max-width: 26rem; }
#login input { width: 100%; padding: .4rem; font: inherit; }
.error { color: #c33; min-height: 1.4em; }
#app { flex: 1; display: flex; min-height: 0; }
aside { width: 17rem; border-right: 1px solid var(--line); overflow-y: auto; }
aside h2, #conversation h2 { font-size: 1rem; margin: .6rem 1rem; }
#threads { list-style: none; margin: 0; padding: 0; }
#threads button { width: 100%; text-align: left; padding: .5rem 1rem; border: 0; border-bottom: 1px solid var(--line); background: none; font: inherit; color: inherit; cursor: pointer; }
#threads button[aria-current="true"] { background: #0b6efd22; }
#threads .who { font-weight: 600; display: block; }
#threads .last { font-size: .85rem; opacity: .7; display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#threads .unread { float: right; background: var(--mine); color: #fff; border-radius: 1rem; padding: 0 .45rem; font-size: .8rem; }
#no-threads { margin: 1rem; opacity: .7; }
#conversation { flex: 1; display: flex; flex-direction: column; min-width: 0; }
#messages { flex: 1; overflow-y: auto; list-style: none; margin: 0; padding: .5rem 1rem; display: flex; flex-direction: column; gap: .35rem; }
.msg { max-width: 70%; padding: .4rem .7rem; border-radius: 1rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.in { align-self: flex-end; background: var(--mine); color: #fff; border-bottom-right-radius: .25rem; }
.msg.out { align-self: flex-start; background: var(--theirs); color: var(--theirs-fg); border-bottom-left-radius: .25rem; }
.msg .meta { display: block; font-size: .72rem; opacity: .75; margin-top: .15rem; }
.msg .media { display: block; font-size: .8rem; }
.msg .media a { color: inherit; }
.msg.failed, .msg.undelivered { outline: 2px solid #c33; }
#compose { display: grid; grid-template-columns: 1fr 1fr; gap: .4rem .8rem; padding: .6rem 1rem; border-top: 1px solid var(--line); }
#compose label { display: flex; flex-direction: column; font-size: .85rem; }
#compose input, #compose textarea { font: inherit; padding: .35rem; }
#compose .wide { grid-column: 1 / -1; }
#compose .row { grid-column: 1 / -1; display: flex; gap: 1rem; align-items: center; }
#compose button { font: inherit; padding: .35rem 1.2rem; }
[hidden] { display: none !important; }
`;

const SCRIPT = String.raw`
"use strict";
const KEY = "switchboard.adminToken";
const $ = (id) => document.getElementById(id);
const msgs = new Map();       // direction + id -> message
const linked = new Map();     // linked number -> jid
const unread = new Map();     // thread key -> count
let selected = "";            // thread key: sandboxNumber + "|" + otherNumber
let run = 0;                  // bumped on each (re)start and logout: stale loops stop
let abort = null;

const token = () => sessionStorage.getItem(KEY) || "";
const auth = (extra) => Object.assign({ authorization: "Bearer " + token() }, extra || {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const threadOf = (m) => (m.direction === "in" ? m.to + "|" + m.from : m.from + "|" + m.to);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

function setLive(on) {
  const l = $("live");
  l.textContent = on ? "live" : "offline";
  l.classList.toggle("on", on);
}

function showLogin(message) {
  run++;
  if (abort) abort.abort();
  setLive(false);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

async function api(method, path, body) {
  const res = await fetch(path, { method, cache: "no-store", headers: auth(body === undefined ? {} : { "content-type": "application/json" }), body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { sessionStorage.removeItem(KEY); showLogin("The admin token was refused."); throw new Error("unauthorized"); }
  let json = null;
  try { json = await res.json(); } catch (e) { json = null; }
  if (!res.ok && res.status !== 202) throw new Error((json && (json.detail || json.title)) || ("HTTP " + res.status));
  return json;
}

function upsert(m, live) {
  const k = m.direction + ":" + m.id;
  const fresh = !msgs.has(k);
  msgs.set(k, m);
  const t = threadOf(m);
  if (fresh && live && selected && t !== selected) unread.set(t, (unread.get(t) || 0) + 1);
}

function threads() {
  const byKey = new Map();
  for (const m of msgs.values()) {
    const k = threadOf(m);
    const list = byKey.get(k) || [];
    list.push(m);
    byKey.set(k, list);
  }
  for (const list of byKey.values()) list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return [...byKey.entries()].sort((a, b) => (a[1][a[1].length - 1].at < b[1][b[1].length - 1].at ? 1 : -1));
}

function titleOf(key) {
  const [mine, other] = key.split("|");
  const jid = linked.get(mine);
  return other + " \u21c4 " + mine + (jid ? " (" + jid + ")" : "");
}

function render() {
  const all = threads();
  if (!selected && all.length) selected = all[0][0];
  const ul = $("threads");
  ul.replaceChildren();
  $("no-threads").hidden = all.length > 0;
  for (const [key, list] of all) {
    const li = el("li");
    const b = el("button");
    b.type = "button";
    b.dataset.thread = key;
    b.setAttribute("aria-current", String(key === selected));
    const n = unread.get(key) || 0;
    if (n) b.append(el("span", "unread", String(n)));
    b.append(el("span", "who", titleOf(key)), el("span", "last", list[list.length - 1].body || "(media)"));
    b.addEventListener("click", () => select(key));
    li.append(b);
    ul.append(li);
  }
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren();
  box.dataset.thread = selected;
  $("thread-title").textContent = selected ? titleOf(selected) : "New conversation";
  const current = all.find((t) => t[0] === selected);
  for (const m of current ? current[1] : []) {
    const li = el("li", "msg " + m.direction + " " + m.status);
    li.dataset.id = m.id;
    li.dataset.status = m.status;
    li.append(el("span", "text", m.body));
    for (const url of m.media || []) {
      const a = el("a", "", url.split("/").pop() || url);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      const s = el("span", "media", "\ud83d\udcce ");
      s.append(a);
      li.append(s);
    }
    const when = new Date(m.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    li.append(el("span", "meta", (m.direction === "in" ? "to XMPP" : "from XMPP") + " \u00b7 " + when + " \u00b7 " + m.status));
    box.append(li);
  }
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function select(key) {
  selected = key;
  unread.delete(key);
  const [mine, other] = key.split("|");
  $("from").value = other;
  $("to").value = mine;
  render();
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function handle(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return { event, data: data.join("\n") };
}

async function loadAll(me) {
  const [users, list] = await Promise.all([api("GET", "api/v1/users"), api("GET", "sandbox/messages")]);
  if (me !== run) return;
  linked.clear();
  const dl = $("linked");
  dl.replaceChildren();
  for (const u of users.users || []) {
    linked.set(u.phone, u.jid);
    const o = el("option");
    o.value = u.phone;
    o.label = u.jid;
    dl.append(o);
  }
  if (!$("to").value && users.users && users.users.length) $("to").value = users.users[0].phone;
  for (const m of list.messages || []) upsert(m, false);
  render();
}

// Server-Sent Events read with fetch(): EventSource cannot send the Authorization header.
async function stream(me) {
  while (me === run) {
    abort = new AbortController();
    try {
      const res = await fetch("sandbox/events", { headers: auth(), cache: "no-store", signal: abort.signal });
      if (res.status === 401) { sessionStorage.removeItem(KEY); showLogin("The admin token was refused."); return; }
      if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const r = await reader.read();
        if (r.done || me !== run) break;
        buf += r.value.replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = handle(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (ev.event === "ready") {
            // subscribed first, then the list: nothing falls between the two
            await loadAll(me);
            setLive(true);
          } else if (ev.event === "message" && ev.data) {
            upsert(JSON.parse(ev.data), true);
            render();
          }
        }
      }
    } catch (e) {
      if (me !== run) return;
    }
    setLive(false);
    await sleep(2000);
  }
}

function start() {
  const me = ++run;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  void stream(me);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  sessionStorage.setItem(KEY, t);
  $("token").value = "";
  try {
    await api("GET", "sandbox/messages");
  } catch (err) {
    if (token()) $("login-error").textContent = String(err.message || err);
    return;
  }
  start();
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  msgs.clear();
  unread.clear();
  selected = "";
  render();
  showLogin("");
});

$("compose").addEventListener("submit", async (e) => {
  e.preventDefault();
  const from = $("from").value.trim();
  const to = $("to").value.trim();
  const body = $("body").value;
  const status = $("send-status");
  status.classList.remove("error");
  status.textContent = "Sending\u2026";
  $("send").disabled = true;
  try {
    const res = await api("POST", "sandbox/sms", { from, to, body });
    status.textContent = res.delivered ? "Sent to " + res.to : res.note || "Not delivered";
    if (!res.delivered) status.classList.add("error");
    $("body").value = "";
    const key = to + "|" + from;
    if (key !== selected) select(key);
  } catch (err) {
    status.classList.add("error");
    status.textContent = String(err.message || err);
  } finally {
    $("send").disabled = false;
    $("body").focus();
  }
});

$("body").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("compose").requestSubmit(); }
});

if (token()) start(); else showLogin("");
`;

const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;

/** Only this page's own script and style run; it talks to its own origin and nowhere else. */
export const SANDBOX_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const SANDBOX_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Switchboard web phone</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Switchboard web phone <small>(sandbox)</small></h1>
  <span id="live" role="status">offline</span>
  <button id="logout" type="button" hidden>Forget token</button>
</header>
<section id="login" hidden>
  <form id="login-form">
    <p>Texts sent here reach the XMPP users linked to sandbox numbers; their replies appear as they are sent.</p>
    <label for="token">Admin token (ADMIN_TOKEN), kept for this tab only</label>
    <input id="token" type="password" autocomplete="off" required>
    <p><button type="submit">Open</button></p>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>
<main id="app" hidden>
  <aside>
    <h2>Threads</h2>
    <ul id="threads"></ul>
    <p id="no-threads">No messages yet: send one below.</p>
  </aside>
  <section id="conversation">
    <h2 id="thread-title">New conversation</h2>
    <ol id="messages" aria-live="polite"></ol>
    <form id="compose">
      <label>From (any number) <input id="from" name="from" value="+15552223333" required autocomplete="off"></label>
      <label>To (a linked number) <input id="to" name="to" list="linked" required autocomplete="off" placeholder="+15550001111"></label>
      <datalist id="linked"></datalist>
      <label class="wide">Message <textarea id="body" name="body" rows="2" placeholder="Text the linked XMPP user (Enter sends)"></textarea></label>
      <div class="row"><button id="send" type="submit">Send</button><span id="send-status" role="status"></span></div>
    </form>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
