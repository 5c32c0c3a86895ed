"""Mail through an SMTP server: the subject names the site and the alarms.

This module only writes the mail; `gateway.notify.smtp` sends it (one SMTP session per
`send`) and says whether a failure is worth a retry.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

from gateway.notify import render
from gateway.notify.base import Message, Recipient, SendResult
from gateway.notify.smtp import SmtpSender


def build_message(msg: Message, sender: str, to: str) -> EmailMessage:
    mail = EmailMessage()  # the default policy RFC 2047-encodes the Chinese subject
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = render.subject(msg)
    mail["Date"] = email.utils.formatdate(localtime=True)
    mail["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(render.text(msg) + "\n", charset="utf-8")
    return mail


class SmtpMail:
    kind = "smtp"

    def __init__(self, name: str, smtp: SmtpSender) -> None:
        self.name = name
        self._smtp = smtp

    def can_reach(self, to: Recipient) -> bool:
        return bool(to.email)

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if not to.email:
            return SendResult(False, False, "recipient has no email address")
        return await self._smtp.send(build_message(msg, self._smtp.address, to.email))
