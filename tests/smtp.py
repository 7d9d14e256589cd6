"""A real SMTP server in the test process (aiosmtpd on a free 127.0.0.1 port) that keeps what it is sent, and can
refuse the first few mails with a 4xx or 5xx, as a busy or strict mail service does."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.client import DEADLINE
from tests.conftest import free_port

# aiosmtpd logs every SMTP command at INFO; a failing test's output should show Kindred's log, not that.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class MailCatcher:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        # Replies to give, in order, before accepting mail again ("451 ..." or "550 ...").
        self.refusals: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._changed: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.refusals:
                self.refused += 1
                reply = self.refusals.pop(0)
            else:
                parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                self.messages.append(parsed)
                reply = "250 OK"
            waiters = list(self._changed)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return reply

    async def wait_for(self, count: int, timeout: float = DEADLINE) -> list[EmailMessage]:
        """Wait until `count` mails have arrived (and return them all)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            self._changed.append((loop, event))
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with self._lock:
                        if len(self.messages) >= count:
                            return list(self.messages)
                    await event.wait()
                    event.clear()
        finally:
            with self._lock:
                self._changed.remove((loop, event))

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def catcher() -> Iterator[MailCatcher]:
    mails = MailCatcher()
    mails.controller.start()
    try:
        yield mails
    finally:
        mails.controller.stop()


def mail_settings(smtp: MailCatcher, **extra: str) -> dict[str, str]:
    """KINDRED_* settings that send a test server's mail to `smtp` at once (links built on a dead port: tests open
    their paths on the server they started), plus `extra`."""
    return {
        "KINDRED_SMTP_URL": smtp.url,
        "KINDRED_MAIL_FROM": "Kindred <hello@kindred.test>",
        "KINDRED_PUBLIC_URL": "http://127.0.0.1:9",
        "KINDRED_MAIL_INTERVAL": "0.1",
        "KINDRED_MAIL_RETRY_SECONDS": "0.1",
        **extra,
    }
