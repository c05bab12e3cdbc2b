"""A real SMTP server for tests (aiosmtpd), and a free port."""

import asyncio
import email
import email.policy
import socket
import threading
import time

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class SinkHandler:
    """Collects messages; can be told to be slow or to refuse recipients.

    `rcpt_delay` slows each RCPT and `delay` each DATA (so a message can take
    longer than a client's per-command timeout without any command timing
    out); `on_data(message)`, if set, runs in the server's thread once a
    message is complete, before the server's 250 answer; `data_started` is
    set when a DATA command begins."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.delay = 0.0
        self.rcpt_delay = 0.0
        self.on_data = None
        self.data_started = threading.Event()
        self.reject: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if address.lower() in self.reject:
            return '550 5.1.1 No such user here'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        self.data_started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        if self.on_data is not None:
            self.on_data(message)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return '250 Message accepted for delivery'


class SMTPSink:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.handler = SinkHandler()
        self.controller: Controller | None = None

    def start(self) -> 'SMTPSink':
        self.controller = Controller(
            self.handler, hostname='127.0.0.1', port=self.port, ready_timeout=10
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.handler.messages

    def reset(self) -> None:
        self.handler.messages.clear()
        self.handler.envelopes.clear()
        self.handler.delay = 0.0
        self.handler.rcpt_delay = 0.0
        self.handler.on_data = None
        self.handler.data_started.clear()
        self.handler.reject.clear()

    def wait_for(self, count: int = 1, timeout: float = 15.0):
        """Poll until `count` messages arrived (sending is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages[:count]
            time.sleep(0.05)
        raise AssertionError(f'expected {count} email(s), got {len(self.messages)}')

    def take(self, subject: str, to: str, timeout: float = 15.0):
        """Wait for the message to `to` whose subject contains `subject`,
        remove it from the list and return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.handler.lock:
                for message in self.messages:
                    if subject in message['Subject'] and message['To'] == to:
                        self.messages.remove(message)
                        return message
            time.sleep(0.05)
        raise AssertionError(f'no {subject!r} email to {to} arrived')
