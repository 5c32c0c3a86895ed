"""Mail through an SMTP server (aiosmtplib): the subject names the site and the alarms.

One `send` is one SMTP session. Connection trouble and 4xx replies are temporary;
authentication failure, a refused sender or recipient (5xx) and a server that lacks a
required extension (STARTTLS, AUTH) are configuration problems a retry will not fix.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

import aiosmtplib

from gateway.notify import render
from gateway.notify.base import Message, Recipient, SendResult


def build_message(msg: Message, sender: str, to: str) -> EmailMessage:
    mail = EmailMessage()  # the default policy RFC 2047-encodes the Chinese subject
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = render.subject(msg)
    mail["Date"] = email.utils.formatdate(localtime=True)
    mail["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(render.text(msg) + "\n", charset="utf-8")
    return mail


def smtp_failure(exc: aiosmtplib.SMTPException) -> SendResult:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # every recipient refused; only "try later" (4xx) refusals are worth a retry
        temporary = all(400 <= r.code < 500 for r in exc.recipients)
        return SendResult(False, temporary and bool(exc.recipients), detail)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPNotSupported):
        return SendResult(False, False, detail)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendResult(False, 400 <= exc.code < 500, detail)
    # timeouts, refused or dropped connections: the server may be back in a moment
    return SendResult(False, True, detail)


class SmtpMail:
    kind = "smtp"

    def __init__(
        self,
        name: str,
        host: str,
        sender: str,
        port: int = 25,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,  # implicit TLS, e.g. port 465
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._timeout = timeout

    def can_reach(self, to: Recipient) -> bool:
        return bool(to.email)

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if not to.email:
            return SendResult(False, False, "recipient has no email address")
        mail = build_message(msg, self._sender, to.email)
        try:
            errors, reply = await aiosmtplib.send(
                mail,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                # False, not None: None would upgrade opportunistically, and a broken
                # upgrade would then fail a server configured for plain delivery
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPException as exc:
            return smtp_failure(exc)
        except OSError as exc:  # DNS failure, unreachable network
            return SendResult(False, True, f"{type(exc).__name__}: {exc}")
        if to.email in errors:
            refused = errors[to.email]
            return SendResult(False, 400 <= refused.code < 500, f"refused: {refused}")
        return SendResult(True, False, reply, mail["Message-ID"])
