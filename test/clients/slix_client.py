#!/usr/bin/python3
"""A scripted XMPP client on slixmpp: the tests' second, independent client stack.

Run with Debian's /usr/bin/python3 (python3-slixmpp). It logs in over plain TCP (SCRAM, no TLS),
sends initial presence, records every <message/> it receives from then on, and runs actions.

  slix_client.py --jid alice@localhost --password pw --port 5222 [--host 127.0.0.1] [--actions JSON]

With --actions (a JSON list, or "-" to read the list from stdin) it runs the actions one after
the other, prints one JSON array of results and exits. Without it, it reads one JSON action per
line on stdin and answers each with one JSON line on stdout (actions run concurrently; a result
carries its action's "seq", if it had one). The first line printed is {"event": "online", "jid": ...} or
{"event": "failed", "error": ...}; EOF on stdin (or the action "stop") ends the session.

Actions ({"op": ..., ...}; every result has "ok" and, on failure, "error"):
  send_chat      to, body, id?, type? ("chat"), receipt? (XEP-0184 request) -> id
  wait_message   from?, body?, body_contains?, type?, timeout? (s)          -> message
                 (any non-error message with a body; received ones are looked at first)
  wait_receipt   id, from?, timeout?                                        -> message (receipt_id)
  wait_error     id, condition?, timeout?                                   -> message (error)
  disco_info     to, node?, timeout?                   -> identities [{category,type,name}], features
  register_get   to, timeout?          -> iq_type, instructions, registered, form {fields}, fields, error
  register_set   to, fields {var: value}, form? (true: x:data submit), remove?, timeout? -> iq_type, error
  messages                                                                  -> messages (all so far)
  stop           ends the session (no result), like EOF on stdin

A "message" is {from, to, type, id, body, receipt_id, receipt_request, oob_urls, error, xml};
an "error" is {type, condition, text, code}.

slixmpp quirks handled here: its "message" event fires only for messages with a body (a raw
handler sees every message instead); the XEP-0184 plugin would acknowledge receipt requests
(auto_ack off); make_iq() ids are all "0" unless given (every IQ gets a fresh id); a refused
connection is retried forever (--login-timeout bounds the login).
"""

import argparse
import asyncio
import json
import sys
import uuid
import xml.etree.ElementTree as ET

from slixmpp.xmlstream.tostring import tostring

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
RECEIPTS = "urn:xmpp:receipts"
REGISTER = "jabber:iq:register"
DATA = "jabber:x:data"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
OOB = "jabber:x:oob"
CLIENT = "jabber:client"


def q(ns, name):
    return "{%s}%s" % (ns, name)


def error_of(el):
    """{type, condition, text, code} of an <error/> child, or None."""
    err = el.find(q(CLIENT, "error"))
    if err is None:
        return None
    condition = None
    text = None
    for child in err:
        if child.tag.startswith("{%s}" % STANZAS):
            name = child.tag.split("}", 1)[1]
            if name == "text":
                text = child.text or ""
            elif condition is None:
                condition = name
    return {"type": err.get("type"), "condition": condition, "text": text, "code": err.get("code")}


def message_dict(el):
    body = el.find(q(CLIENT, "body"))
    received = el.find(q(RECEIPTS, "received"))
    return {
        "from": el.get("from"),
        "to": el.get("to"),
        "type": el.get("type") or "normal",
        "id": el.get("id"),
        "body": body.text if body is not None and body.text is not None else (None if body is None else ""),
        "receipt_id": received.get("id") if received is not None else None,
        "receipt_request": el.find(q(RECEIPTS, "request")) is not None,
        "oob_urls": [u.text or "" for u in el.findall("%s/%s" % (q(OOB, "x"), q(OOB, "url")))],
        "error": error_of(el) if el.get("type") == "error" else None,
        "xml": tostring(el),
    }


def bare(jid):
    return (jid or "").split("/", 1)[0]


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0030")  # disco
        # Receipts: requests are sent by us; incoming requests are not acknowledged automatically
        # (a test must see the gateway's receipts, not ours).
        self.register_plugin("xep_0184", {"auto_ack": False, "auto_request": False})
        self.roster.auto_authorize = False
        self.roster.auto_subscribe = False
        self.messages = []
        self.waiters = []  # (predicate, future)
        self.online = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("disconnected", self._on_disconnected)
        # Every <message/>, with or without a body (the "message" event only sees bodies).
        self.register_handler(Callback("record every message", MatchXPath("{%s}message" % CLIENT), self._record))

    async def _on_session_start(self, _event):
        self.send_presence()
        if not self.online.done():
            self.online.set_result(str(self.boundjid))

    def _on_failed_auth(self, _event):
        if not self.online.done():
            self.online.set_exception(RuntimeError("authentication failed (not-authorized)"))

    def _on_connection_failed(self, event):
        if not self.online.done():
            self.online.set_exception(RuntimeError("connection failed: %s" % (event,)))

    def _on_disconnected(self, reason):
        if not self.online.done():
            self.online.set_exception(RuntimeError("disconnected before the session started: %s" % (reason,)))

    def _record(self, msg):
        m = message_dict(msg.xml)
        self.messages.append(m)
        for pred, fut in list(self.waiters):
            if not fut.done() and pred(m):
                fut.set_result(m)

    async def wait_for(self, pred, timeout, what):
        for m in self.messages:
            if pred(m):
                return m
        fut = asyncio.get_event_loop().create_future()
        entry = (pred, fut)
        self.waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            seen = [m["xml"][:400] for m in self.messages[-10:]]
            raise RuntimeError("no %s within %ss; received %d message(s): %s" % (what, timeout, len(self.messages), seen))
        finally:
            self.waiters.remove(entry)

    def new_iq(self, itype, to):
        # make_iq() would give every IQ the id "0"
        return self.make_iq(id="slix-%s" % uuid.uuid4().hex[:12], ito=to, itype=itype)

    async def send_iq(self, iq, timeout):
        """The reply as an ElementTree element; an error reply is returned, not raised."""
        try:
            reply = await iq.send(timeout=timeout)
            return reply.xml
        except IqError as e:
            return e.iq.xml
        except IqTimeout:
            raise RuntimeError("no reply to the IQ within %ss" % timeout)


# ---- actions -------------------------------------------------------------------------------

async def act_send_chat(c, a):
    msg = c.make_message(mto=a["to"], mbody=a.get("body"), mtype=a.get("type", "chat"))
    msg["id"] = a.get("id") or "slix-%s" % uuid.uuid4().hex[:12]
    if a.get("receipt"):
        msg.xml.append(ET.Element(q(RECEIPTS, "request")))
    msg.send()
    return {"id": msg["id"]}


async def act_wait_message(c, a):
    def pred(m):
        if m["type"] == "error" or m["body"] is None:
            return False
        if a.get("from") is not None and bare(m["from"]) != bare(a["from"]) and m["from"] != a["from"]:
            return False
        if a.get("type") is not None and m["type"] != a["type"]:
            return False
        if a.get("body") is not None and m["body"] != a["body"]:
            return False
        if a.get("body_contains") is not None and a["body_contains"] not in m["body"]:
            return False
        return True

    return {"message": await c.wait_for(pred, a.get("timeout", 5), "message matching %s" % json.dumps({k: a.get(k) for k in ("from", "body", "body_contains", "type") if a.get(k) is not None}))}


async def act_wait_receipt(c, a):
    def pred(m):
        return m["receipt_id"] == a["id"] and (a.get("from") is None or bare(m["from"]) == bare(a["from"]))

    return {"message": await c.wait_for(pred, a.get("timeout", 5), "receipt for %s" % a["id"])}


async def act_wait_error(c, a):
    def pred(m):
        if m["type"] != "error" or m["id"] != a["id"]:
            return False
        return a.get("condition") is None or (m["error"] or {}).get("condition") == a["condition"]

    return {"message": await c.wait_for(pred, a.get("timeout", 5), "error for %s" % a["id"])}


async def act_disco_info(c, a):
    # through slixmpp's own disco plugin (XEP-0030), not hand-built XML
    try:
        iq = await c["xep_0030"].get_info(jid=a["to"], node=a.get("node"), cached=False, timeout=a.get("timeout", 5))
    except IqError as e:
        return {"ok": False, "iq_type": "error", "error": error_of(e.iq.xml)}
    except IqTimeout:
        raise RuntimeError("no disco#info reply within %ss" % a.get("timeout", 5))
    info = iq["disco_info"]
    return {
        "iq_type": iq["type"],
        "from": str(iq["from"]),
        "identities": [{"category": i[0], "type": i[1], "name": i[3]} for i in info["identities"]],
        "features": list(info["features"]),
    }


def parse_form(x):
    fields = []
    for f in x.findall(q(DATA, "field")):
        v = f.find(q(DATA, "value"))
        fields.append({
            "var": f.get("var"),
            "type": f.get("type"),
            "label": f.get("label"),
            "value": v.text if v is not None else None,
            "required": f.find(q(DATA, "required")) is not None,
        })
    title = x.find(q(DATA, "title"))
    instructions = x.find(q(DATA, "instructions"))
    return {
        "type": x.get("type"),
        "title": title.text if title is not None else None,
        "instructions": instructions.text if instructions is not None else None,
        "fields": fields,
    }


async def act_register_get(c, a):
    iq = c.new_iq("get", a["to"])
    iq.xml.append(ET.Element(q(REGISTER, "query")))
    reply = await c.send_iq(iq, a.get("timeout", 5))
    out = {"iq_type": reply.get("type"), "from": reply.get("from")}
    if reply.get("type") == "error":
        out["ok"] = False
        out["error"] = error_of(reply)
        return out
    query = reply.find(q(REGISTER, "query"))
    if query is None:
        raise RuntimeError("result without <query xmlns='jabber:iq:register'/>: %s" % tostring(reply))
    instructions = query.find(q(REGISTER, "instructions"))
    x = query.find(q(DATA, "x"))
    out.update({
        "instructions": instructions.text if instructions is not None else None,
        "registered": query.find(q(REGISTER, "registered")) is not None,
        "form": parse_form(x) if x is not None else None,
        # legacy (non-form) fields: every other empty child, e.g. <username/>, <phone/>
        "fields": [ch.tag.split("}", 1)[1] for ch in query if ch.tag.startswith("{%s}" % REGISTER) and ch.tag.split("}", 1)[1] not in ("instructions", "registered", "remove")],
    })
    return out


async def act_register_set(c, a):
    iq = c.new_iq("set", a["to"])
    query = ET.SubElement(iq.xml, q(REGISTER, "query"))
    if a.get("remove"):
        ET.SubElement(query, q(REGISTER, "remove"))
    elif a.get("form", True):
        x = ET.SubElement(query, q(DATA, "x"), {"type": "submit"})
        fields = dict(a.get("fields") or {})
        fields.setdefault("FORM_TYPE", REGISTER)
        for var, value in fields.items():
            f = ET.SubElement(x, q(DATA, "field"), {"var": var})
            for v in value if isinstance(value, list) else [value]:
                ET.SubElement(f, q(DATA, "value")).text = str(v)
    else:
        for var, value in (a.get("fields") or {}).items():
            ET.SubElement(query, q(REGISTER, var)).text = str(value)
    reply = await c.send_iq(iq, a.get("timeout", 5))
    out = {"iq_type": reply.get("type"), "from": reply.get("from"), "xml": tostring(reply)}
    if reply.get("type") == "error":
        out["ok"] = False
        out["error"] = error_of(reply)
    return out


async def act_messages(c, _a):
    return {"messages": c.messages}


ACTIONS = {
    "send_chat": act_send_chat,
    "wait_message": act_wait_message,
    "wait_receipt": act_wait_receipt,
    "wait_error": act_wait_error,
    "disco_info": act_disco_info,
    "register_get": act_register_get,
    "register_set": act_register_set,
    "messages": act_messages,
}


async def run_action(c, a):
    op = a.get("op")
    result = {"op": op}
    if "seq" in a:
        result["seq"] = a["seq"]
    try:
        fn = ACTIONS.get(op)
        if fn is None:
            raise RuntimeError("unknown op %r" % (op,))
        out = await fn(c, a)
        result["ok"] = True
        result.update(out)
    except Exception as e:  # reported, not raised: the session goes on
        result["ok"] = False
        result["error"] = "%s: %s" % (type(e).__name__, e)
    return result


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def read_lines():
    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        line = line.strip()
        if line:
            yield line


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--login-timeout", type=float, default=10)
    ap.add_argument("--actions", help="JSON list of actions, or - to read it from stdin")
    args = ap.parse_args()

    c = Client(args.jid, args.password)
    c.connect(address=(args.host, args.port), force_starttls=False, disable_starttls=True)
    try:
        jid = await asyncio.wait_for(c.online, args.login_timeout)
    except Exception as e:  # includes the timeout: slixmpp would retry a refused connection forever
        msg = "no session within %ss" % args.login_timeout if isinstance(e, asyncio.TimeoutError) else str(e)
        emit({"event": "failed", "error": msg})
        c.abort()
        return 1
    emit({"event": "online", "jid": jid})

    if args.actions is not None:
        actions = json.loads(sys.stdin.read() if args.actions == "-" else args.actions)
        results = []
        for a in actions:
            if a.get("op") == "stop":
                break
            results.append(await run_action(c, a))
        emit(results)
    else:
        tasks = set()

        async def one(a):
            emit(await run_action(c, a))

        async for line in read_lines():
            try:
                a = json.loads(line)
            except ValueError as e:
                emit({"ok": False, "error": "bad JSON: %s" % e})
                continue
            if a.get("op") == "stop":
                break
            t = asyncio.ensure_future(one(a))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        for t in list(tasks):
            t.cancel()
    try:
        await asyncio.wait_for(c.disconnect(wait=1), 2)
    except Exception:
        c.abort()
    return 0


if __name__ == "__main__":
    loop = asyncio.get_event_loop()
    code = loop.run_until_complete(main())
    # slixmpp leaves its stream tasks behind: end them quietly
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    sys.exit(code)
