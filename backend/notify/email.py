"""Email over SMTP, optionally upgraded with STARTTLS, with credentials from the
environment (the file names the variables, never holds the secrets).

smtplib blocks, so each message is sent in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

from backend.notify.config import Email
from backend.notify.delivery import SEND_TIMEOUT_S, DeliveryFailed
from backend.notify.ledger import Notice
from backend.notify.slack import notice_line
from backend.schemas import NoticeStatus


def email_message(email: Email, notices: Sequence[Notice]) -> EmailMessage:
    """Subject: how many fire or resolved and the first summary; body: one line each."""
    firing = sum(1 for notice in notices if notice.status is NoticeStatus.FIRING)
    counts = [f"{firing} firing" if firing else "", f"{len(notices) - firing} resolved"]
    what = ", ".join(part for part in counts if part and not part.startswith("0 "))
    message = EmailMessage()
    message["Subject"] = f"[logdeck] {what}: {notices[0].alert.summary}"[:200]
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message.set_content("\n".join(notice_line(notice) for notice in notices) + "\n")
    return message


def credentials(email: Email) -> tuple[str, str] | None:
    """The user and password of the variables the receiver names; `KeyError` if unset."""
    if email.username_env is None:
        return None
    password = os.environ[email.password_env] if email.password_env else ""
    return os.environ[email.username_env], password


class EmailSender:
    def __init__(self, email: Email) -> None:
        self._email = email
        self._login = credentials(email)

    async def send(self, notices: Sequence[Notice]) -> None:
        await asyncio.to_thread(self._send, email_message(self._email, notices))

    def _send(self, message: EmailMessage) -> None:
        email = self._email
        where = f"smtp://{email.host}:{email.port}"
        try:
            with smtplib.SMTP(email.host, email.port, timeout=SEND_TIMEOUT_S) as smtp:
                if email.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._login is not None:
                    smtp.login(*self._login)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            reason = f"{where} answered {error.smtp_code}"
            raise DeliveryFailed(reason, permanent=500 <= error.smtp_code < 600) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed(f"{where} refused every recipient", permanent=True) from None
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryFailed(f"{where}: {error}") from None
