"""The one SMTP sender (aiosmtplib): alarm mails (`channels.mail`) and the daily report
mails (`gateway.report.mailer`) both leave through it.

One `send` is one SMTP session for one finished `EmailMessage`, and never raises for delivery
trouble: connection trouble and 4xx replies are temporary; authentication failure, a refused
sender or recipient (5xx) and a server that lacks a required extension (STARTTLS, AUTH) are
configuration problems a retry will not fix.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

import aiosmtplib

from gateway.config.schema import SmtpChannel
from gateway.notify.base import SendResult


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


class SmtpSender:
    """One server and sender address; the recipients are the mail's own `To` header."""

    def __init__(
        self,
        host: str,
        sender: str,
        *,
        port: int = 25,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,  # implicit TLS, e.g. port 465
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._sender = sender
        self._port = port
        self._starttls = starttls
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._timeout = timeout

    @classmethod
    def for_channel(cls, channel: SmtpChannel, password: str | None, timeout: float) -> SmtpSender:
        return cls(
            channel.host,
            channel.sender,
            port=channel.port,
            starttls=channel.starttls,
            username=channel.username,
            password=password,
            timeout=timeout,
        )

    @property
    def address(self) -> str:
        """The envelope and `From` address."""
        return self._sender

    async def send(self, mail: EmailMessage) -> SendResult:
        to = [addr for _, addr in email.utils.getaddresses(mail.get_all("To", []))]
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
        refused = [errors[addr] for addr in to if addr in errors]
        if refused:
            temporary = all(400 <= r.code < 500 for r in refused)
            return SendResult(False, temporary, f"refused: {refused[0]}")
        return SendResult(True, False, reply, str(mail["Message-ID"]))
