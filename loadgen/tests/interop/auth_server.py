"""An OAuth 2.1 authorization server for loadgen's client credentials tests: RFC 8414
metadata and a token endpoint that authenticates clients by client_secret_basic,
client_secret_post or private_key_jwt (RFC 7523, ES256/RS256), as --methods allows, and issues
short-lived HS256 JWT access tokens whose audience is the RFC 8707 `resource` asked for.
GET /stats tells how many tokens it issued, per method, and how many requests it refused.

Usage: auth_server.py --port P --client-id ID [--client-secret S] [--client-public-key PEM]...
                      [--methods m1,m2] [--issuer-path /tenant] [--expires-in 2]
                      --signing-secret S
       auth_server.py --write-keys DIR   (ec.pem, ec.pub.pem, rsa.pem, rsa.pub.pem; PKCS#8)
"""

import argparse
import base64
import math
import os
import time
import uuid
from urllib.parse import parse_qs, unquote_plus

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def write_keys(folder: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    os.makedirs(folder, exist_ok=True)
    for name, key in (
        ("ec", ec.generate_private_key(ec.SECP256R1())),
        ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ):
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        with open(os.path.join(folder, f"{name}.pem"), "wb") as f:
            f.write(private)
        with open(os.path.join(folder, f"{name}.pub.pem"), "wb") as f:
            f.write(public)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-keys")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--issuer-path", default="")
    parser.add_argument("--client-id", default="loadgen")
    parser.add_argument("--client-secret")
    parser.add_argument("--client-public-key", action="append", default=[])
    parser.add_argument(
        "--methods", default="client_secret_basic,client_secret_post,private_key_jwt"
    )
    parser.add_argument("--expires-in", type=float, default=2)
    parser.add_argument("--signing-secret", default="")
    args = parser.parse_args()
    if args.write_keys:
        write_keys(args.write_keys)
        return

    issuer = f"http://127.0.0.1:{args.port}{args.issuer_path}"
    token_endpoint = f"{issuer}/token"
    methods = [m for m in args.methods.split(",") if m]
    # By the algorithm each key signs with (pyjwt wants the key to match the token's alg).
    public_keys = {"ES256": [], "RS256": []}
    for path in args.client_public_key:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        with open(path, "rb") as f:
            key = load_pem_public_key(f.read())
        public_keys["ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "RS256"].append(key)
    stats = {"issued": 0, "refused": 0, "methods": {}}
    seen_jti = set()

    def refuse(error: str, description: str, status: int = 401) -> JSONResponse:
        stats["refused"] += 1
        return JSONResponse(
            {"error": error, "error_description": description}, status_code=status
        )

    def authenticate(request: Request, form: dict) -> tuple[str | None, str]:
        """The authenticated client id (or None) and the method used (or why not)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            if "client_secret_basic" not in methods:
                return None, "client_secret_basic is not accepted"
            try:
                pair = base64.b64decode(header[6:]).decode()
                client_id, secret = (unquote_plus(p) for p in pair.split(":", 1))
            except Exception:
                return None, "malformed Basic credentials"
            ok = client_id == args.client_id and secret == args.client_secret
            return (client_id if ok else None), "client_secret_basic"
        if "client_assertion" in form:
            if "private_key_jwt" not in methods:
                return None, "private_key_jwt is not accepted"
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return None, "wrong client_assertion_type"
            try:
                alg = jwt.get_unverified_header(form["client_assertion"]).get("alg")
            except jwt.PyJWTError:
                return None, "malformed client_assertion"
            for key in public_keys.get(alg, []):
                try:
                    claims = jwt.decode(
                        form["client_assertion"],
                        key,
                        algorithms=[alg],
                        audience=[token_endpoint, issuer],
                        issuer=args.client_id,
                        options={"require": ["exp", "iss", "sub", "aud", "jti"]},
                    )
                except jwt.PyJWTError:
                    continue
                if claims["sub"] != args.client_id or claims["jti"] in seen_jti:
                    return None, "private_key_jwt"
                seen_jti.add(claims["jti"])
                return args.client_id, "private_key_jwt"
            return None, "private_key_jwt"
        if "client_secret" in form:
            if "client_secret_post" not in methods:
                return None, "client_secret_post is not accepted"
            ok = (
                form.get("client_id") == args.client_id
                and form["client_secret"] == args.client_secret
            )
            return (args.client_id if ok else None), "client_secret_post"
        return None, "no client authentication"

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "token_endpoint": token_endpoint,
                "token_endpoint_auth_methods_supported": methods,
                "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
                "grant_types_supported": ["client_credentials"],
                "response_types_supported": ["token"],
            }
        )

    async def token(request: Request) -> JSONResponse:
        body = (await request.body()).decode()
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        client_id, method = authenticate(request, form)
        if client_id is None:
            return refuse("invalid_client", f"client authentication failed ({method})")
        if form.get("grant_type") != "client_credentials":
            return refuse("unsupported_grant_type", str(form.get("grant_type")), 400)
        resource = form.get("resource")
        if not resource:
            return refuse("invalid_target", "a resource (RFC 8707) is required", 400)
        now = time.time()
        access = jwt.encode(
            {
                "iss": issuer,
                "sub": client_id,
                "client_id": client_id,
                "aud": resource,
                "scope": form.get("scope", ""),
                "iat": now,
                # pyjwt reads `exp` as whole seconds (truncated): round up, so a token is
                # valid at least as long as `expires_in` says.
                "exp": math.ceil(now + args.expires_in),
                "jti": uuid.uuid4().hex,
            },
            args.signing_secret,
            algorithm="HS256",
        )
        stats["issued"] += 1
        stats["methods"][method] = stats["methods"].get(method, 0) + 1
        return JSONResponse(
            {"access_token": access, "token_type": "Bearer", "expires_in": args.expires_in},
            headers={"cache-control": "no-store"},
        )

    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse(stats)

    app = Starlette(
        routes=[
            Route(
                f"/.well-known/oauth-authorization-server{args.issuer_path}",
                metadata,
                methods=["GET"],
            ),
            Route(f"{args.issuer_path}/token", token, methods=["POST"]),
            Route("/stats", get_stats, methods=["GET"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
