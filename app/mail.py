"""Mail: written to a durable queue in the transaction of what caused it, sent after commit by a background sender.

    async with unit_of_work(live) as outbox:
        ... the change ...
        await mail.enqueue(outbox, account_id, address, "reset", subject, text, html)
    # committed: the mail exists, and this instance's sender is woken to send it now

Every instance runs a `Mailer`. It claims due mail by setting `claimed_until` (Postgres: `FOR UPDATE SKIP LOCKED`;
SQLite: inside `BEGIN IMMEDIATE`), so one instance sends each mail; a refusal or an unreachable server puts the mail
back with an exponential backoff. Without `KINDRED_SMTP_URL` the mail is written to the server log instead and kept
(state `logged`), so a newcomer can still follow a reset link; `kindred mail` lists what the queue holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

import aiosmtplib
import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.settings import Settings
from db.engine import current_engine, write_transaction
from db.queries import now
from db.tables import MailMessage
from web.templating import TEMPLATES

log = logging.getLogger("kindred.mail")

# Mail one claim takes at a time: a small batch, so a second instance shares a burst instead of waiting behind it.
BATCH = 20
# How long a claim lasts: far beyond one SMTP conversation (TIMEOUT), so a live sender is never overtaken; a crashed
# sender's mail goes out once this has passed.
LEASE = timedelta(minutes=5)
# Seconds one SMTP conversation may take.
TIMEOUT = 60.0
# Attempts before a mail is given up as failed (with the default 30 s base, the last is about two hours later).
MAX_ATTEMPTS = 8
# Kinds whose body holds a secret link: once the SMTP server has it, the copy in the queue is emptied.
SECRET_KINDS = frozenset({"reset", "email_confirm"})

_env = Environment(
    loader=FileSystemLoader(TEMPLATES / "mail"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


class Rendered(msgspec.Struct, frozen=True):
    subject: str
    text: str
    html: str


class Attachment(msgspec.Struct, frozen=True):
    """A text file sent with a mail (a drop-in's .ics): the message becomes multipart/mixed."""

    filename: str
    content_type: str  # "text/calendar; method=PUBLISH", say
    content: str


def render(kind: str, subject: str, **context: Any) -> Rendered:
    """The text and HTML parts of a mail from `web/templates/mail/<kind>.txt` and `.html`."""
    context = {"subject": subject, **context}
    return Rendered(
        subject=subject,
        text=_env.get_template(f"{kind}.txt").render(context),
        html=_env.get_template(f"{kind}.html").render(context),
    )


async def enqueue(
    outbox: Any,
    account_id: uuid.UUID | None,
    to_addr: str,
    kind: str,
    mail: Rendered,
    *,
    unsubscribe: str | None = None,
    attachment: Attachment | None = None,
) -> uuid.UUID:
    """Queue a mail inside the caller's transaction; it is sent once that commits (the outbox wakes the sender).
    `unsubscribe` is the one-click link of a non-transactional mail (List-Unsubscribe, RFC 8058)."""
    mail_id = uuid.uuid4()
    await MailMessage.insert(
        MailMessage(
            id=mail_id,
            account=account_id,
            kind=kind,
            to_addr=to_addr,
            subject=mail.subject,
            body_text=mail.text,
            body_html=mail.html,
            state="queued",
            attempts=0,
            send_after=now(),
            created_at=now(),
            unsubscribe_url=unsubscribe,
            attachment_name=attachment.filename if attachment else None,
            attachment_type=attachment.content_type if attachment else None,
            attachment=attachment.content if attachment else None,
        )
    )
    outbox.mailed()
    return mail_id


_CLAIM_PG = (
    "UPDATE mail_message SET claimed_until = {}, attempts = attempts + 1 WHERE id IN ("
    "SELECT id FROM mail_message WHERE state = 'queued' AND send_after <= {} "
    "AND (claimed_until IS NULL OR claimed_until < {}) ORDER BY send_after LIMIT {} FOR UPDATE SKIP LOCKED"
    ") RETURNING id, kind, to_addr, subject, body_text, body_html, attempts, created_at, unsubscribe_url, "
    "attachment_name, attachment_type, attachment"
)
# SQLite has no row locks: the claim runs inside BEGIN IMMEDIATE (write_transaction), which serialises claimers.
_CLAIM_SQLITE = _CLAIM_PG.replace(" FOR UPDATE SKIP LOCKED", "")


async def claim(batch: int = BATCH) -> list[dict[str, Any]]:
    """Take due mail for this instance for LEASE; nobody else claims it meanwhile."""
    at = now()
    sql = _CLAIM_SQLITE if is_sqlite() else _CLAIM_PG
    async with write_transaction():
        rows: list[dict[str, Any]] = await MailMessage.raw(sql, at + LEASE, at, at, batch)
    return rows


def is_sqlite() -> bool:
    """Whether the bound engine is SQLite (no row locks: BEGIN IMMEDIATE serialises writers instead)."""
    from piccolo.engine.sqlite import SQLiteEngine

    return isinstance(current_engine(), SQLiteEngine)


def backoff(attempts: int, base: float) -> timedelta:
    """The wait before attempt `attempts + 1`: base, 2·base, 4·base ... at most six hours."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 6 * 3600.0))


def message(row: dict[str, Any], settings: Settings) -> EmailMessage:
    """The MIME message: multipart/alternative with the text part first (RFC 2046: the plainest first); with an
    attachment, that inside a multipart/mixed. Non-transactional mail carries its one-click unsubscribe (RFC 8058)."""
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row["to_addr"]
    msg["Subject"] = row["subject"]
    created = row["created_at"]
    msg["Date"] = format_datetime(created if isinstance(created, datetime) else now())
    # One id per queued mail: should a crash resend it after its lease, the receiving side can tell it is the same.
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=str(row["id"]).replace("-", ""), domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    if row.get("unsubscribe_url"):
        msg["List-Unsubscribe"] = f"<{row['unsubscribe_url']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(row["body_text"])
    msg.add_alternative(row["body_html"], subtype="html")
    if row.get("attachment") is not None:
        _, _, rest = str(row["attachment_type"] or "text/plain").partition("/")
        subtype, _, params = rest.partition(";")
        extra = dict(p.strip().split("=", 1) for p in params.split(";") if "=" in p)
        msg.add_attachment(
            row["attachment"], subtype=subtype.strip() or "plain", filename=row["attachment_name"], params=extra
        )
    return msg


class Mailer:
    """This instance's sender: claims due mail, sends it (or logs it), records the outcome."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._wake = asyncio.Event()
        self.stats = {"sent": 0, "logged": 0, "retried": 0, "failed": 0}

    def wake(self) -> None:
        """Mail was committed on this instance: look at the queue now rather than at the next interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await self.send_due():
                    pass
            except Exception:
                log.exception("mail sender failed; trying again shortly")
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, stopper], timeout=self.settings.mail_interval, return_when="FIRST_COMPLETED")
            for task in (waiter, stopper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def send_due(self) -> int:
        """Claim one batch and deliver it; returns how many were claimed."""
        rows = await claim()
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: dict[str, Any]) -> None:
        mail_id = row["id"]
        smtp = self.settings.smtp
        if smtp is None:
            log.warning(
                "mail not sent (KINDRED_SMTP_URL is not set), kept in the queue: to %s, subject %r\n%s",
                row["to_addr"],
                row["subject"],
                row["body_text"],
            )
            await self._finish(mail_id, "logged", keep_body=True)
            self.stats["logged"] += 1
            return
        try:
            await aiosmtplib.send(
                message(row, self.settings),
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                use_tls=smtp.use_tls,
                start_tls=smtp.start_tls,
                timeout=TIMEOUT,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._retry(mail_id, int(row["attempts"]), str(exc))
            return
        await self._finish(mail_id, "sent", keep_body=row["kind"] not in SECRET_KINDS)
        self.stats["sent"] += 1

    async def _finish(self, mail_id: Any, state: str, *, keep_body: bool) -> None:
        values: dict[Any, Any] = {MailMessage.state: state, MailMessage.sent_at: now(), MailMessage.claimed_until: None}
        if not keep_body:
            values.update({MailMessage.body_text: "", MailMessage.body_html: ""})
        await MailMessage.update(values).where(MailMessage.id == mail_id)

    async def _retry(self, mail_id: Any, attempts: int, error: str) -> None:
        if attempts >= MAX_ATTEMPTS:
            log.error("mail %s given up after %d attempts: %s", mail_id, attempts, error)
            await MailMessage.update(
                {MailMessage.state: "failed", MailMessage.claimed_until: None, MailMessage.last_error: error[:1000]}
            ).where(MailMessage.id == mail_id)
            self.stats["failed"] += 1
            return
        wait = backoff(attempts, self.settings.mail_retry_seconds)
        log.warning(
            "mail %s refused (attempt %d), retrying in %.0f s: %s", mail_id, attempts, wait.total_seconds(), error
        )
        await MailMessage.update(
            {
                MailMessage.send_after: now() + wait,
                MailMessage.claimed_until: None,
                MailMessage.last_error: error[:1000],
            }
        ).where(MailMessage.id == mail_id)
        self.stats["retried"] += 1


async def recent(limit: int = 20) -> list[dict[str, Any]]:
    """The newest mail in the queue, for `kindred mail`."""
    rows: list[dict[str, Any]] = (
        await MailMessage.select(
            MailMessage.created_at,
            MailMessage.kind,
            MailMessage.to_addr,
            MailMessage.subject,
            MailMessage.state,
            MailMessage.attempts,
            MailMessage.body_text,
        )
        .order_by(MailMessage.created_at, ascending=False)
        .limit(limit)
    )
    return rows
