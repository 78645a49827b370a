"""The official Python SDK's client, driven line by line, for the gateway tests.

The test (Rust) writes one JSON command per line on stdin and reads one JSON answer per line
on stdout, so it can act on the fleet (kill a member, scale a group) between two requests of
the same client session, the way a user's long-lived client lives through such events:

    {"op": "list"}                            -> {"tools": [names], "pages": n}
    {"op": "call", "name": N, "arguments": A} -> {"isError": b, "text": "...", "structured": {..}}
    {"op": "ping"}                            -> {"ok": true}
    {"op": "set_level", "level": L}           -> {"ok": true}
    {"op": "await_stream", "timeout": s}      -> {"stream": b}  (the session's GET stream is open)
    {"op": "wait_list_changed", "timeout": s} -> {"list_changed": n}  (notifications seen so far)
    {"op": "close"}                           -> {"warnings": [...], "get_stream": {...}}

A failed command answers {"error": "..."}. On start it prints {"connected": {...}} (the
negotiated version, the server's name, whether it announces tool list changes), or
{"error": ...}.

Usage: py_gateway_client.py URL --mode legacy|auto

`legacy` is the initialize handshake (what every client before 2026 sends); `auto` (the
`Client` default in mcp 2.x) probes `server/discover` first and falls back to initialize. The
SDK's own log records are kept: `close` reports every warning or error it logged (e.g.
"Session termination failed: 202") and what became of the GET stream.
"""

import argparse
import json
import logging
import sys

import anyio
from mcp.client.client import Client


# What the SDK's transport logs (at debug) once a session's GET stream is open.
GET_OPEN = "GET SSE connection established"


class Records(logging.Handler):
    """Every record the SDK logs, kept for `close`."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelno, record.name, record.getMessage()))

    def count(self, text):
        """How many records say `text`."""
        return sum(text in m for _, _, m in self.records)


def say(obj):
    print(json.dumps(obj), flush=True)


async def commands():
    """Lines of stdin, read without blocking the event loop."""
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            return
        if line.strip():
            yield json.loads(line)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--mode", choices=["legacy", "auto"], required=True)
    args = parser.parse_args()

    records = Records()
    sdk_log = logging.getLogger("mcp")
    sdk_log.setLevel(logging.DEBUG)
    sdk_log.addHandler(records)

    list_changed = {"count": 0, "event": anyio.Event()}

    async def on_message(message):
        if isinstance(message, Exception):
            records.records.append((logging.ERROR, "message_handler", repr(message)))
            return
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            list_changed["count"] += 1
            list_changed["event"].set()

    client = Client(args.url, mode=args.mode, message_handler=on_message)
    try:
        await client.__aenter__()
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
        say({"error": f"connect: {e!r}"})
        return
    say(
        {
            "connected": {
                "protocol_version": client.protocol_version,
                "server": client.server_info.name if client.server_info else None,
                "list_changed_capability": bool(
                    client.server_capabilities.tools and client.server_capabilities.tools.list_changed
                ),
            }
        }
    )
    async for cmd in commands():
        op = cmd.get("op")
        try:
            if op == "list":
                names, pages, cursor = [], 0, None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    pages += 1
                    names.extend(t.name for t in page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                say({"tools": names, "pages": pages})
            elif op == "call":
                result = await client.call_tool(cmd["name"], cmd.get("arguments") or {})
                text = "".join(getattr(c, "text", "") for c in result.content)
                say({"isError": bool(result.is_error), "text": text, "structured": result.structured_content})
            elif op == "ping":
                await client.send_ping()
                say({"ok": True})
            elif op == "set_level":
                await client.set_logging_level(cmd["level"])
                say({"ok": True})
            elif op == "await_stream":
                with anyio.move_on_after(float(cmd.get("timeout", 10))):
                    while not records.count(GET_OPEN):
                        await anyio.sleep(0.02)
                say({"stream": records.count(GET_OPEN) > 0})
            elif op == "wait_list_changed":
                with anyio.move_on_after(float(cmd.get("timeout", 10))):
                    await list_changed["event"].wait()
                list_changed["event"] = anyio.Event()
                say({"list_changed": list_changed["count"]})
            elif op == "close":
                break
            else:
                say({"error": f"unknown op {op!r}"})
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
            say({"error": f"{op}: {e!r}"})
    await client.__aexit__(None, None, None)
    say(
        {
            "warnings": [f"{name}: {m}" for level, name, m in records.records if level >= logging.WARNING],
            "get_stream": {
                "established": records.count(GET_OPEN) > 0,
                "errors": records.count("GET stream error"),
                "not_opened": records.count("GET stream not opened"),
            },
            "list_changed": list_changed["count"],
        }
    )


if __name__ == "__main__":
    anyio.run(main)
