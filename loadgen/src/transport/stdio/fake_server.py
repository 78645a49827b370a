"""A stdio MCP peer for loadgen's stdio transport tests, doing on purpose what real servers
may do: answer out of order, send notifications and requests before an answer, write a line
that is not JSON or is too long, and exit mid-call.

Usage: fake_server.py [NEGOTIATED_VERSION|discover]
  discover: answers server/discover (a 2026-07-28 server); otherwise refuses it with -32601 and
  answers initialize with NEGOTIATED_VERSION (default 2025-11-25).
Tools (tools/call name): echo, slow {ms}, chatty, replies (a tool error until one of its own requests got an answer), meta {expect} (a tool error unless the request carried _meta exactly when expected), garbage, huge {bytes}, die.
"""

import json
import os
import sys
import threading

mode = sys.argv[1] if len(sys.argv) > 1 else "2025-11-25"
out = sys.stdout
write_lock = threading.Lock()
replies = 0


def send(message):
    line = message if isinstance(message, str) else json.dumps(message)
    with write_lock:
        out.write(line + "\n")
        out.flush()


def result(rid, value):
    send({"jsonrpc": "2.0", "id": rid, "result": value})


def text(rid, value):
    result(rid, {"content": [{"type": "text", "text": str(value)}], "isError": False})


for raw in sys.stdin:
    msg = json.loads(raw)
    method = msg.get("method")
    rid = msg.get("id")
    if method is None:
        if rid == "s1":
            replies += 1
        continue
    params = msg.get("params") or {}
    if method == "server/discover":
        if mode == "discover":
            result(rid, {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}})
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
    elif method == "initialize":
        result(rid, {"protocolVersion": mode, "capabilities": {"tools": {}},
                     "serverInfo": {"name": "fake", "version": "0"}})
    elif method.startswith("notifications/"):
        pass
    elif method == "tools/call":
        name = params.get("name")
        args = params.get("arguments") or {}
        if name == "echo":
            text(rid, args.get("text", ""))
        elif name == "slow":
            threading.Timer(args.get("ms", 100) / 1000, text, (rid, "slow")).start()
        elif name == "chatty":
            send({"jsonrpc": "2.0", "method": "notifications/message",
                  "params": {"level": "info", "data": "working"}})
            send({"jsonrpc": "2.0", "id": "s1", "method": "roots/list", "params": {}})
            text(rid, "chatty")
        elif name == "replies":
            result(rid, {"content": [{"type": "text", "text": str(replies)}], "isError": replies == 0})
        elif name == "meta":
            ok = ("_meta" in params) == args.get("expect", False)
            result(rid, {"content": [{"type": "text", "text": str(ok)}], "isError": not ok})
        elif name == "garbage":
            send("this is not json")
        elif name == "huge":
            send('{"jsonrpc":"2.0","id":%s,"result":{"pad":"%s"}}' % (json.dumps(rid), "x" * args["bytes"]))
        elif name == "die":
            os._exit(3)
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "unknown tool"}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": method}})
