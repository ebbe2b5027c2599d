"""A real SMTP server for tests (aiosmtpd) on 127.0.0.1, and Django pointed at it through EMAIL_URL's parser."""

from __future__ import annotations

import email
import socket
from email import policy
from email.message import EmailMessage

import environ
from aiosmtpd.controller import Controller


class Inbox:
    """aiosmtpd handler: keeps every message that arrived, parsed."""

    def __init__(self):
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["To"]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.running = False

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.running = True

    def stop(self):
        if self.running:
            self.controller.stop()
            self.running = False

    def configure(self, settings) -> None:
        """Set Django's EMAIL_* settings the way production does: from an EMAIL_URL."""
        for name, value in environ.Env.email_url_config(self.url).items():
            setattr(settings, name, value)
        settings.EMAIL_TIMEOUT = 5


def body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
