"""How messages leave: SMTP, the development console, or held in the queue.

The transport is chosen once, when the app is built. Each opens a
connection for a batch and says why a send failed in plain words.
"""

import contextlib
import smtplib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import formatdate, parseaddr

import idna
from flask import Flask
from flask_mail import Connection, Message

Send = Callable[[Message], None]
MESSAGES_PER_CONNECTION = 50


class PermanentFailure(Exception):
    """The server refused this message for good; retrying cannot help."""


class TransientFailure(Exception):
    """Worth retrying later; `connection` says the whole connection is gone."""

    def __init__(self, reason: str, connection: bool = True):
        super().__init__(reason)
        self.connection = connection


def _describe_unsupported(exc: smtplib.SMTPNotSupportedError) -> str:
    if 'AUTH' in str(exc):
        return (
            'the mail server does not accept a login here: unset '
            'MAIL_USERNAME/MAIL_PASSWORD, or turn on MAIL_USE_TLS if it '
            'only offers login after STARTTLS'
        )
    return (
        'the mail server does not offer STARTTLS: set MAIL_USE_TLS=false, '
        'or use the port that supports it'
    )


def _describe_response(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return f'SMTP {exc.smtp_code}: {text[:200]}'


def describe(exc: BaseException) -> str:
    """A plain-words reason, without message content."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f'SMTP login refused ({exc.smtp_code}): check MAIL_USERNAME and '
            'MAIL_PASSWORD'
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return _describe_unsupported(exc)
    if isinstance(exc, ssl.SSLError):
        return (
            f'TLS failed ({exc.reason}): check MAIL_USE_SSL/MAIL_USE_TLS '
            'against the port'
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f'recipient refused with {codes}'
    if isinstance(exc, smtplib.SMTPResponseException):
        return _describe_response(exc)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return 'timed out talking to the mail server'
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused by the mail server'
    return f'{type(exc).__name__}: {exc}'[:300]


def classify(exc: BaseException) -> Exception:
    """Map an SMTP/network error to a permanent or transient failure."""
    if isinstance(exc, (PermanentFailure, TransientFailure)):
        return exc
    reason = describe(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return PermanentFailure(reason)
        return TransientFailure(reason, connection=False)
    if isinstance(exc, (smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
        if exc.smtp_code >= 500:
            return PermanentFailure(reason)
        return TransientFailure(reason, connection=False)
    return TransientFailure(reason)


def classify_send(exc: BaseException) -> Exception:
    """Like `classify`, for an error while sending one message: only a broken
    connection stops the batch; anything caused by the message's own content
    or address fails that message alone."""
    if isinstance(exc, (PermanentFailure, TransientFailure)):
        return exc
    per_message = (
        smtplib.SMTPRecipientsRefused,
        smtplib.SMTPDataError,
        smtplib.SMTPSenderRefused,
    )
    if isinstance(exc, per_message):
        return classify(exc)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentFailure(describe(exc))
    if isinstance(exc, OSError):  # network, TLS, disconnects (smtplib's too)
        return TransientFailure(describe(exc))
    return PermanentFailure(describe(exc))


def is_permanent(failure: Exception) -> bool:
    return isinstance(failure, PermanentFailure)


def envelope_address(address) -> str:
    """The SMTP envelope form: the bare address, its domain in IDNA (ASCII)."""
    _, addr = parseaddr(address) if isinstance(address, str) else address
    local, at, domain = addr.rpartition('@')
    if not at or not local:
        raise PermanentFailure('not an email address')
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode('ascii')
        except idna.IDNAError as exc:
            raise PermanentFailure('the domain cannot be written in IDNA') from exc
    return f'{local}@{domain}'


def utf8_message_bytes(message: Message) -> bytes:
    """The message for an SMTPUTF8 session, with UTF-8 addresses in its
    headers (Flask-Mail can only write ASCII addresses)."""
    msg = EmailMessage(policy=SMTPUTF8)
    msg['Subject'] = message.subject
    msg['From'] = message.sender
    msg['To'] = ', '.join(message.recipients)
    msg['Date'] = formatdate(message.date)
    msg['Message-ID'] = message.msgId
    for name, value in (message.extra_headers or {}).items():
        msg[name] = value
    msg.set_content(message.body or '')
    if message.html:
        msg.add_alternative(message.html, subtype='html')
    return msg.as_bytes()


class TimeoutConnection(Connection):
    """Flask-Mail's connection, with a timeout, a clean close, IDNA domains
    and SMTPUTF8 for addresses whose local part is not ASCII."""

    def __init__(self, state, timeout: float):
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self):
        m = self.mail
        if m.use_ssl:
            host = smtplib.SMTP_SSL(m.server, m.port, timeout=self.timeout)
        else:
            host = smtplib.SMTP(m.server, m.port, timeout=self.timeout)
        if m.use_tls:
            host.starttls()
        if m.username and m.password:
            host.login(m.username, m.password)
        return host

    def send(self, message: Message, envelope_from=None) -> None:
        if message.has_bad_headers():
            raise PermanentFailure('a header contains a line break')
        if message.date is None:
            message.date = time.time()
        sender = envelope_address(envelope_from or message.sender)
        recipients = [envelope_address(r) for r in message.send_to]
        options = list(message.mail_options)
        utf8 = not all(a.isascii() for a in (sender, *recipients))
        if utf8:
            if not self.host.has_extn('smtputf8'):
                raise PermanentFailure(
                    'the address has a non-ASCII local part and the mail server '
                    'does not offer SMTPUTF8'
                )
            options.append('SMTPUTF8')
        try:
            data = utf8_message_bytes(message) if utf8 else message.as_bytes()
        except (UnicodeError, ValueError) as exc:
            raise PermanentFailure('the message cannot be encoded') from exc
        self.host.sendmail(sender, recipients, data, options, message.rcpt_options)

    def __exit__(self, *exc_info):
        if self.host is not None:
            try:
                self.host.quit()
            except (smtplib.SMTPException, OSError):
                self.host.close()


class Link:
    """One SMTP connection for a pass, opened at the first message and
    renewed every MESSAGES_PER_CONNECTION (servers cap a session)."""

    def __init__(self, transport):
        self.transport = transport
        self._stack: contextlib.ExitStack | None = None
        self._send = None
        self._count = 0

    def send(self, message: Message) -> None:
        if self._stack is None or self._count >= MESSAGES_PER_CONNECTION:
            self.close()
            stack = contextlib.ExitStack()
            try:
                self._send = stack.enter_context(self.transport.open())
            except Exception as exc:  # no connection: every message waits
                raise classify(exc) from exc
            self._stack, self._count = stack, 0
        self._count += 1
        self._send(message)

    def close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


class SMTPTransport:
    name = 'smtp'

    def __init__(self, app: Flask):
        self.state = app.extensions['mail']
        self.timeout = app.config['MAIL_TIMEOUT']

    @contextlib.contextmanager
    def open(self) -> Iterator[Send]:
        with TimeoutConnection(self.state, self.timeout) as conn:
            yield conn.send


class ConsoleTransport:
    """Development with no MAIL_SERVER: print each message to stdout.

    A deliberate delivery channel for local work, not a log line.
    """

    name = 'console'

    @contextlib.contextmanager
    def open(self) -> Iterator[Send]:
        yield self.send

    @staticmethod
    def send(message: Message) -> None:
        out = sys.stdout
        out.write(
            '\n---------- email (no MAIL_SERVER: printed, not sent) ----------\n'
            f'From: {message.sender}\nTo: {", ".join(message.recipients)}\n'
            f'Subject: {message.subject}\n\n{message.body}\n'
            '----------------------------------------------------------------\n'
        )
        out.flush()


class HoldTransport:
    """Production with no MAIL_SERVER: every message stays queued."""

    name = 'hold'

    @contextlib.contextmanager
    def open(self) -> Iterator[Send]:
        raise TransientFailure('MAIL_SERVER is not set')
        yield  # pragma: no cover


def choose_transport(app: Flask):
    if app.config.get('MAIL_SERVER'):
        return SMTPTransport(app)
    if app.config['APP_ENV'] in ('development', 'testing'):
        return ConsoleTransport()
    return HoldTransport()
