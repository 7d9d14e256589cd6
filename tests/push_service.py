"""A local stand-in for a browser vendor's push service, speaking the real protocol.

It receives the HTTP POST a push service would (RFC 8030), checks the VAPID authorisation (RFC 8292: an ES256 JWT
signed by the server's key, addressed to this origin), and decrypts the aes128gcm payload (RFC 8291) with the
subscription's private key and auth secret, which a real push service could not do but the browser would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.conftest import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscribed browser: its key pair and auth secret, as PushManager.subscribe() would make them."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, service: PushService) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{service.origin}/push/{self.name}",
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }


@dataclass
class Received:
    browser: str
    payload: dict[str, Any]
    headers: dict[str, str]
    claims: dict[str, Any]


class PushService:
    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.browsers: dict[str, Browser] = {}
        self.received: list[Received] = []
        self.gone: set[str] = set()  # browsers that answer 410, as after the user revoked permission
        # Browsers whose push service hangs (as an overloaded one does) until `release` is set.
        self.stall: set[str] = set()
        self.release = asyncio.Event()
        self.stalled = 0  # requests that arrived for a stalled browser and are hanging
        # Browsers whose push service answers a redirect to this stand-in's /elsewhere, which counts what reaches it.
        self.redirect: set[str] = set()
        self.redirected = 0
        self.elsewhere = 0
        self.server_key: str | None = None  # the application server key the subscriptions were made with
        self._runner: web.AppRunner | None = None

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name)
        return self.browsers[name]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        app.router.add_route("*", "/elsewhere", self._elsewhere)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.elsewhere += 1
        return web.Response(status=201)

    def _verify_vapid(self, authorization: str) -> dict[str, Any]:
        scheme, _, params = authorization.partition(" ")
        assert scheme.lower() == "vapid", authorization
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        token, public = fields["t"], fields["k"]
        if self.server_key is not None:
            assert public == self.server_key, "signed with the key the browser subscribed with"
        header_b64, claims_b64, signature_b64 = token.split(".")
        assert json.loads(unb64url(header_b64))["alg"] == "ES256"
        signature = unb64url(signature_b64)
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public))
        key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(unb64url(claims_b64))
        assert claims["aud"] == self.origin and claims["exp"] > time.time() and claims["sub"]
        return claims

    async def _push(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.gone:
            return web.Response(status=410, text="subscription expired")
        if name in self.redirect:
            self.redirected += 1
            raise web.HTTPTemporaryRedirect(f"{self.origin}/elsewhere")
        if name in self.stall:
            self.stalled += 1
            await self.release.wait()
        browser = self.browsers.get(name)
        if browser is None:
            return web.Response(status=404)
        assert request.headers["Content-Encoding"] == "aes128gcm" and int(request.headers["TTL"]) > 0
        claims = self._verify_vapid(request.headers["Authorization"])
        body = await request.read()
        plain = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm")
        self.received.append(Received(name, json.loads(plain), dict(request.headers), claims))
        return web.Response(status=201)
