"""Web Push: VAPID (RFC 8292) identity, payload encryption (RFC 8291, aes128gcm), delivery to push services.

The VAPID key is derived from KINDRED_SECRET, so every instance of a deployment signs with the same key and browsers'
subscriptions keep working whichever instance sends; it is kept exactly as well as the secret is.

A subscription's endpoint is a URL the server will POST to: without a check it is a server-side request forgery
lever. Only origins on the push-service allow-list are accepted (KINDRED_PUSH_ALLOWED_ORIGINS replaces the default),
on their own port only, and redirects are never followed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

log = logging.getLogger("kindred.push")

# The push services of the major browsers (Chrome/Edge via FCM, Firefox, Safari, Windows).
DEFAULT_PUSH_ORIGINS = (
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.push.apple.com",
    "https://*.notify.windows.com",
)
# How long a push service keeps a message for a browser that is offline.
PUSH_TTL_SECONDS = 12 * 3600
# Seconds one push request may take, connecting included; a push service slower than this is skipped this time.
PUSH_TIMEOUT_SECONDS = 15
# How long one VAPID signature is good for; RFC 8292 allows at most 24 hours.
VAPID_EXPIRY_SECONDS = 12 * 3600
# Pushes in flight at once: enough to drain a big circle quickly, few enough not to flood one push service.
PUSH_CONCURRENCY = 32
# P-256 group order; a private key is a number in [1, n-1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VapidKey:
    def __init__(self, secret: str) -> None:
        seed = hmac.new(secret.encode(), b"kindred vapid key v1", hashlib.sha256).digest()
        scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
        self._key = ec.derive_private_key(scalar, ec.SECP256R1())
        self.signer = Vapid02(private_key=self._key)
        point = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # What the browser needs as `applicationServerKey` (contract: GET /api/v1/push/key).
        self.public_key = b64url(point)


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port filled in when it is the scheme's default; None for anything
    else, including a URL that carries credentials or a port that is not a number."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # "http://[::1" (bad IPv6 literal), ":99999", ":port"
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def origin_allowed(endpoint: str, allowed: tuple[str, ...]) -> bool:
    """Whether `endpoint` is on a push service of the allow-list. Entries are origins (`https://fcm.googleapis.com`,
    `http://127.0.0.1:8123`) or wildcards for subdomains (`https://*.notify.windows.com`); scheme and port must match
    the entry's exactly (its own port, else the scheme's default), so a wildcard never reaches another port of a
    host under it (`https://evil.notify.windows.com:6379` is refused)."""
    target = _origin(endpoint)
    if target is None:
        return False
    scheme, host, port = target
    for entry in allowed:
        entry_scheme, _, rest = entry.strip().rstrip("/").partition("://")
        wildcard = rest.startswith("*.")
        origin = _origin(f"{entry_scheme}://{rest[2:] if wildcard else rest}")
        if origin is None or (origin[0], origin[2]) != (scheme, port):
            continue
        if host.endswith("." + origin[1]) if wildcard else host == origin[1]:
            return True
    return False


def valid_keys(p256dh: str, auth: str) -> bool:
    """An uncompressed P-256 point (65 bytes) and a 16-byte auth secret, as browsers send them."""
    try:
        point, secret = b64url_decode(p256dh), b64url_decode(auth)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError):
        return False
    return len(point) == 65 and len(secret) == 16


class PushSender:
    """Sends encrypted pushes; reports which subscriptions the push service says are gone (404/410)."""

    def __init__(self, key: VapidKey, allowed: tuple[str, ...], contact: str) -> None:
        self.key = key
        self.allowed = allowed
        self._contact = contact
        self._session: aiohttp.ClientSession | None = None
        self._gate = asyncio.Semaphore(PUSH_CONCURRENCY)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT_SECONDS))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_all(self, subscriptions: list[dict[str, Any]], payload: bytes) -> list[Any]:
        """Deliver `payload` to every subscription; return the ids of subscriptions that no longer exist."""
        results = await asyncio.gather(*(self._send(s, payload) for s in subscriptions))
        return [s["id"] for s, gone in zip(subscriptions, results, strict=True) if gone]

    async def _send(self, subscription: dict[str, Any], payload: bytes) -> bool:
        endpoint = subscription["endpoint"]
        if not origin_allowed(endpoint, self.allowed):
            log.warning("refusing to push to subscription %s: not an allowed push service", subscription["id"])
            return False
        host = urlsplit(endpoint).hostname
        assert self._session is not None, "PushSender.start() first"
        info = {"endpoint": endpoint, "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}}
        async with self._gate:
            # pywebpush encrypts (RFC 8291); the request is made here, because pywebpush's follows redirects, and a
            # redirect would carry the request to wherever the push service (or an impostor) points: an allowed
            # origin must not become a stepping stone to one that is not.
            body = WebPusher(info).encode(payload, "aes128gcm")["body"]
            parts = urlsplit(endpoint)
            claims = {
                "sub": self._contact,
                "aud": f"{parts.scheme}://{parts.netloc}",
                "exp": int(time.time()) + VAPID_EXPIRY_SECONDS,
            }
            headers = {
                **self.key.signer.sign(claims),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "TTL": str(PUSH_TTL_SECONDS),
            }
            try:
                async with self._session.post(endpoint, data=body, headers=headers, allow_redirects=False) as reply:
                    status = reply.status
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.warning("push to %s failed: %s", host, exc)
                return False
        if status in (404, 410):
            return True  # the browser unsubscribed or the subscription expired
        if 300 <= status < 400:
            log.warning("push to %s answered a redirect (%d), which is never followed", host, status)
        elif status >= 400:
            log.warning("push to %s failed: %d", host, status)
        return False
