"""An MCP server built with the official Python SDK behind OAuth, for loadgen's client
credentials tests: the SDK's resource-server support (`AuthSettings` with
`resource_server_url`) answers 401 with `WWW-Authenticate: Bearer resource_metadata=...` and
serves the protected resource metadata (RFC 9728) naming --issuer; its `TokenVerifier` accepts
the HS256 JWTs auth_server.py issues for this server (audience = the server's URL, unexpired).

Usage: py_protected_server.py --port P --issuer URL --signing-secret S [--path /mcp]
"""

import argparse
import math

import jwt
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer


class JwtVerifier:
    def __init__(self, secret: str, resource: str):
        self.secret = secret
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=["HS256"], audience=self.resource
            )
        except jwt.PyJWTError:
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=[s for s in claims.get("scope", "").split() if s],
            expires_at=math.ceil(claims["exp"]),
            resource=self.resource,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="/mcp")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--signing-secret", required=True)
    args = parser.parse_args()
    resource = f"http://127.0.0.1:{args.port}{args.path}"
    server = MCPServer(
        "interop-python-protected",
        token_verifier=JwtVerifier(args.signing_secret, resource),
        auth=AuthSettings(
            issuer_url=args.issuer,
            resource_server_url=resource,
            validate_token_resource=True,
        ),
        log_level="WARNING",
    )

    @server.tool()
    def echo(text: str = "") -> str:
        """Returns its text."""
        return text

    server.run("streamable-http", host="127.0.0.1", port=args.port, streamable_http_path=args.path)


if __name__ == "__main__":
    main()
