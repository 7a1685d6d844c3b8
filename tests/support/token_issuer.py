"""A Docker-style token server for a CNCF Distribution upstream that runs `auth: token`.

Distribution answers 401 with `Bearer realm=".../token",service=...,scope=...`; a client
GETs the realm with Basic credentials and receives a JWT signed with an EC P-256 key. The
token names its key by `kid` in libtrust's format, which Distribution matches against the
public keys of its `rootcertbundle` (the self-signed certificate written here).

The server runs in a thread of the test process (an aiohttp app on its own event loop), so a
session fixture starts it once. Only `username`/`password` get tokens, and a token grants
exactly the actions asked for: an anonymous client gets 401, as from a private Docker Hub repo.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from registry.auth.jws import sign
from registry.auth.keys import key_id, write_certificate
from tests.support.server import free_port

ISSUER = "berth-tests-token-issuer"


class TokenIssuer:
    def __init__(self, directory: Path, *, service: str, username: str, password: str) -> None:
        self.service, self.username, self.password = service, username, password
        self.key = ec.generate_private_key(ec.SECP256R1())
        directory.mkdir(parents=True, exist_ok=True)
        self.certificate = directory / "token-issuer.pem"
        write_certificate(self.key, self.certificate, ISSUER)
        self.port = free_port()
        self.requests: list[dict[str, str]] = []  # (service, scope, user) of each token request
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def distribution_auth_config(self) -> str:
        """The `auth:` section (YAML) for the Distribution that trusts this issuer."""
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {self.service}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {self.certificate}\n"
        )

    def mint(self, access: list[dict[str, Any]], subject: str = "") -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject or self.username,
            "aud": self.service,
            "exp": now + 600,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return sign({"kid": key_id(self.key.public_key())}, claims, self.key)

    def push_headers(self, repository: str) -> dict[str, str]:
        """An Authorization header to seed `repository` directly."""
        token = self.mint([{"type": "repository", "name": repository, "actions": ["pull", "push"]}])
        return {"Authorization": f"Bearer {token}"}

    # --- server ------------------------------------------------------------------------------

    def start(self) -> TokenIssuer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def _user(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user if (user, password) == (self.username, self.password) else None

    async def _token(self, request: web.Request) -> web.Response:
        user = self._user(request)
        scope = " ".join(request.query.getall("scope", []))
        self.requests.append(
            {"service": request.query.get("service", ""), "scope": scope, "user": user or ""}
        )
        if user is None:
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="token-issuer"'},
            )
        access = []
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        token = self.mint(access, user)
        return web.json_response(
            {
                "token": token,
                "access_token": token,
                "expires_in": 600,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
