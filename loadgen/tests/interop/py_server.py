"""An MCP server built with the official Python SDK, for loadgen's interop tests.

Tools: `echo` (returns its text), `chatty` (sends two log messages and two progress
notifications before its result, as `ctx.info` / `ctx.report_progress` do on a streamed
response), `asks` (asks the client for its roots, an elicitation and a sampling message before
answering, and says what it got).

Usage: py_server.py --transport streamable-http|sse|stdio [--port P] [--path /mcp]
                    [--stateless] [--json]
"""

import argparse

import warnings

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.message import ServerMessageMetadata

# Roots and sampling are deprecated in 2026-07-28; this server still exercises them.
warnings.simplefilter("ignore", DeprecationWarning)

server = MCPServer("interop-python")


@server.tool()
def echo(text: str = "") -> str:
    """Returns its text."""
    return text


@server.tool()
async def chatty(text: str = "", ctx: Context = None) -> str:
    """Logs and reports progress before answering."""
    await ctx.info(f"starting {text}")
    await ctx.report_progress(1, 2)
    await ctx.info("half way")
    await ctx.report_progress(2, 2)
    return text


@server.tool()
async def asks(ctx: Context = None) -> str:
    """Asks the client for roots, an elicitation and a sampling message, then answers."""
    got = []
    session = ctx.request_context.session
    # Tied to this request, so they travel on its response stream (not the GET stream).
    related = ServerMessageMetadata(related_request_id=ctx.request_id)
    for name, ask in (
        (
            "roots",
            lambda: session.send_request(
                types.ListRootsRequest(), types.ListRootsResult, metadata=related
            ),
        ),
        ("elicit", lambda: ctx.elicit("Continue?", schema=Confirm)),
        (
            "sampling",
            lambda: session.create_message(
                messages=[
                    types.SamplingMessage(
                        role="user", content=types.TextContent(type="text", text="hi")
                    )
                ],
                max_tokens=5,
                related_request_id=ctx.request_id,
            ),
        ),
    ):
        try:
            result = await ask()
            got.append(f"{name}:ok:{type(result).__name__}")
        except Exception as e:  # the client may decline: that is an answer too
            got.append(f"{name}:error:{type(e).__name__}")
    return " ".join(got)


try:
    from pydantic import BaseModel

    class Confirm(BaseModel):
        ok: bool
except ImportError:  # pydantic is a dependency of mcp
    raise


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="streamable-http")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="/mcp")
    parser.add_argument("--stateless", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server.settings.log_level = "WARNING"
    if args.transport == "stdio":
        server.run("stdio")
    elif args.transport == "sse":
        server.run("sse", host="127.0.0.1", port=args.port)
    else:
        server.run(
            "streamable-http",
            host="127.0.0.1",
            port=args.port,
            streamable_http_path=args.path,
            stateless_http=args.stateless,
            json_response=args.json,
        )


if __name__ == "__main__":
    main()
