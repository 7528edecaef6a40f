"""Mail to users, through the site's SMTP relay (`GITWARD_SMTP_URL`).

`smtp://host[:25]` speaks plain SMTP, `smtp+starttls://host[:587]` upgrades with STARTTLS
(the certificate verified), `smtps://host[:465]` is TLS from the start; a user and password
in the URL (`smtp+starttls://user:pass@relay`) log in. The standard library's smtplib
speaks the protocol; this module only reads the URL and builds the message.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Relay:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, url: str) -> Relay:
        parts = urlsplit(url)
        default = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[parts.scheme]
        return cls(
            parts.scheme,
            parts.hostname or "localhost",
            parts.port or default,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def message(sender: str, mail: Mail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.body)
    return msg


def send(relay: Relay, sender: str, mails: list[Mail]) -> None:
    """Send every mail over one connection; raises OSError or smtplib.SMTPException."""
    if not mails:
        return
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if relay.scheme == "smtps":
        client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=TIMEOUT_SECONDS,
                                  context=context)
    else:
        client = smtplib.SMTP(relay.host, relay.port, timeout=TIMEOUT_SECONDS)
    with client:
        if relay.scheme == "smtp+starttls":
            client.starttls(context=context)
        if relay.username is not None:
            client.login(relay.username, relay.password or "")
        for mail in mails:
            client.send_message(message(sender, mail))
