"""The outbox sender: one background thread per process drains the outbox.

Messages are claimed atomically (a conditional UPDATE, plus SKIP LOCKED on
PostgreSQL), so several processes can share one outbox without sending a
message twice. Transient failures are retried with exponential backoff and
jitter; permanent ones (5xx for the recipient) are marked failed.
"""

import atexit
import os
import random
import smtplib
import socket
import ssl
import sys
import threading
import time
import uuid
import weakref
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, has_app_context
from flask_mail import Connection, Message

from app import db
from app.models import OutboxMessage, User, utcnow

BATCH_SIZE = 50
# Outbox kinds rendered by the sender: a reset job, then the resolved email.
RESET_KINDS = ('password_reset', 'reset_email')
FIRST_RETRY = 2.0  # seconds
MAX_BACKOFF = 3600.0


class PermanentFailure(Exception):
    """The server refused this message for good; retrying cannot help."""


class TransientFailure(Exception):
    """Worth retrying later; `connection` says the whole connection is gone."""

    def __init__(self, reason: str, connection: bool = True):
        super().__init__(reason)
        self.connection = connection


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from FIRST_RETRY, full jitter."""
    ceiling = min(MAX_BACKOFF, FIRST_RETRY * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def describe(exc: BaseException) -> str:
    """A plain-words reason, without message content."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f'SMTP login refused ({exc.smtp_code}): check MAIL_USERNAME and '
            'MAIL_PASSWORD'
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
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
    if isinstance(exc, ssl.SSLError):
        return (
            f'TLS failed ({exc.reason}): check MAIL_USE_SSL/MAIL_USE_TLS '
            'against the port'
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f'recipient refused with {codes}'
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        return f'SMTP {exc.smtp_code}: {text[:200]}'
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return 'timed out talking to the mail server'
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused by the mail server'
    return f'{type(exc).__name__}: {exc}'[:300]


class TimeoutConnection(Connection):
    """Flask-Mail's connection, with a timeout and plain-words errors."""

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

    def __exit__(self, *exc_info):
        if self.host is not None:
            try:
                self.host.quit()
            except (smtplib.SMTPException, OSError):
                self.host.close()


def to_message(row: OutboxMessage) -> Message:
    return Message(
        subject=row.subject,
        sender=row.sender,
        recipients=[r for r in row.recipients.split(',') if r],
        body=row.text_body,
        html=row.html_body,
        extra_headers={'X-Microblog-Outbox-Id': str(row.id)},
    )


def classify(exc: BaseException) -> Exception:
    """Map an SMTP/network error to a permanent or transient failure."""
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


class OutboxSender:
    """Drains the outbox in a background thread until stopped."""

    def __init__(self, app: Flask):
        self.app = app
        self.name = f'{socket.gethostname()}:{os.getpid()}'
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_upkeep = float('-inf')
        self._requests_lock = threading.Lock()
        self.active_requests = 0  # requests this process is serving now
        self.last_request = float('-inf')  # when one last started or ended

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            # Hand the GIL to request threads within 1 ms (default 5 ms), so
            # a busy sender does not add its time slices to response times.
            sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
            self._thread = threading.Thread(
                target=self._run, name='outbox-sender', daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def request_started(self) -> None:
        with self._requests_lock:
            self.active_requests += 1
            self.last_request = time.monotonic()

    def request_ended(self) -> None:
        with self._requests_lock:
            self.active_requests = max(0, self.active_requests - 1)
            self.last_request = time.monotonic()

    def yield_to_requests(self) -> None:
        """Wait (up to MAIL_SENDER_YIELD s) while this process serves a request.

        Sending is background work: under load it must not slow pages down.
        It still makes progress, one message per MAIL_SENDER_YIELD at least.
        """
        deadline = time.monotonic() + self.app.config['MAIL_SENDER_YIELD']
        while not self._stop.is_set():
            now = time.monotonic()
            busy = self.active_requests > 0 or now - self.last_request < 0.005
            if not busy or now >= deadline:
                return
            time.sleep(0.002)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the message in hand, leave the rest queued, and return."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        poll = float(self.app.config.get('MAIL_POLL_INTERVAL', 2.0))
        while not self._stop.is_set():
            busy = False
            try:
                with self.app.app_context():
                    busy = self.run_once() > 0
            except Exception:
                self.app.logger.exception('outbox: sender loop error')
            if not busy:
                self._wake.wait(poll)
                self._wake.clear()

    # One pass: claim a batch, send it over one connection.

    def run_once(self) -> int:
        """Claim and process due messages; returns how many were handled."""
        try:
            if time.monotonic() - self._last_upkeep > 60:
                self.release_stale()
                self.prune()
                self._last_upkeep = time.monotonic()
            rows = self.claim(BATCH_SIZE)
        finally:
            db.session.remove()
        if not rows:
            return 0
        try:
            self.deliver(rows)
        finally:
            db.session.remove()
        return len(rows)

    def claim(self, limit: int) -> list[OutboxMessage]:
        now = utcnow()
        token = f'{self.name[:48]}:{uuid.uuid4().hex[:12]}'  # fits String(64)
        due = (
            sa.select(OutboxMessage.id)
            .where(OutboxMessage.status == 'pending')
            .where(OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        if db.engine.dialect.name == 'postgresql':
            due = due.with_for_update(skip_locked=True)
        ids = list(db.session.scalars(due))
        if not ids:
            db.session.rollback()
            return []
        # The status condition makes the claim atomic: of two processes that
        # picked the same ids, only one UPDATE matches each row.
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.status == 'pending')
            .values(status='sending', claimed_by=token, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        query = (
            sa.select(OutboxMessage)
            .where(OutboxMessage.claimed_by == token)
            .where(OutboxMessage.status == 'sending')
            .order_by(OutboxMessage.id)
        )
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows

    def release_stale(self) -> None:
        """Return claims of a process that died mid-send to the queue."""
        lease = timedelta(seconds=4 * self.app.config['MAIL_TIMEOUT'] + 60)
        db.session.execute(
            sa.update(OutboxMessage)
            .where(
                OutboxMessage.status == 'sending',
                OutboxMessage.claimed_at < utcnow() - lease,
            )
            .values(status='pending', claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    def prune(self) -> None:
        keep = timedelta(seconds=self.app.config['MAIL_RETENTION'])
        cutoff = utcnow() - keep
        db.session.execute(
            sa.delete(OutboxMessage)
            .where(
                OutboxMessage.status.in_(('sent', 'dropped')),
                OutboxMessage.created_at < cutoff,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    def deliver(self, rows: list[OutboxMessage]) -> None:
        self.yield_to_requests()
        rows = self.prepare(rows)
        if not rows:
            return
        if not current_app.config.get('MAIL_SERVER'):
            if current_app.config['APP_ENV'] not in ('development', 'testing'):
                # Production without a mail server: keep every message queued.
                failure = TransientFailure('MAIL_SERVER is not set')
                for row in rows:
                    self.mark_failed(row, failure)
                return
            for row in rows:
                print_to_console(row)
                self.mark_sent(row)
            return
        state = current_app.extensions['mail']
        timeout = current_app.config['MAIL_TIMEOUT']
        pending = list(rows)
        try:
            with TimeoutConnection(state, timeout) as conn:
                while pending:
                    row = pending[0]
                    self.yield_to_requests()
                    try:
                        conn.send(to_message(row))
                    except Exception as exc:  # classified below
                        failure = classify(exc)
                        if isinstance(failure, TransientFailure) and failure.connection:
                            raise
                        self.mark_failed(row, failure)
                    else:
                        self.mark_sent(row)
                    pending.pop(0)
                    if self._stop.is_set():
                        break  # finish the message in hand, leave the rest
        except Exception as exc:
            # The connection is unusable: every message still in hand waits
            # for its next try, so a server that is down is not hammered.
            failure = classify(exc)
            for row in pending:
                self.mark_failed(row, failure)
            if not pending:
                self.app.logger.warning('outbox: closing connection: %s', failure)
            return
        for row in pending:
            self.requeue(row)

    def prepare(self, rows: list[OutboxMessage]) -> list[OutboxMessage]:
        """Resolve reset jobs and render reset emails; drop the rest.

        A new job ('password_reset') is looked up and throttled once, in one
        transaction for the whole batch, so floods for unknown or throttled
        addresses cost little; it becomes a 'reset_email' for the stored
        address. Its link is rendered afresh at every attempt and never
        stored, so the outbox holds no tokens and a retry after a long outage
        still carries a valid link.
        """
        jobs = [row for row in rows if row.kind in RESET_KINDS]
        if not jobs:
            return rows
        from app.email import render_password_reset_email
        from app.security import audit, mask_email

        config = current_app.config
        users = {
            user.email: user
            for user in db.session.scalars(
                sa.select(User).where(User.email.in_({job.recipients for job in jobs}))
            )
        }
        dropped = []
        for job in jobs:
            user = users.get(job.recipients)
            if job.kind == 'password_reset':
                if user is None:
                    email = mask_email(job.recipients)
                    audit('reset_unknown_address', email=email, job=job.id)
                    dropped.append(job)
                    continue
                if not user.claim_reset_slot(config['RESET_EMAIL_INTERVAL']):
                    audit('reset_throttled', account=user.id, job=job.id)
                    dropped.append(job)
                    continue
                job.kind, job.recipients = 'reset_email', user.email
                db.session.execute(
                    sa.update(OutboxMessage)
                    .where(OutboxMessage.id == job.id)
                    .values(kind=job.kind, recipients=job.recipients)
                    .execution_options(synchronize_session=False)
                )
                audit('reset_email_queued', account=user.id, job=job.id)
            elif user is None:  # the account's email changed since
                audit('reset_account_changed', job=job.id)
                dropped.append(job)
                continue
            # In memory only: finish() writes status columns, never these.
            job.sender = config['MAIL_DEFAULT_SENDER']
            rendered = render_password_reset_email(user)
            job.subject = rendered['subject']
            job.text_body = rendered['text_body']
            job.html_body = rendered['html_body']
        if dropped:
            db.session.execute(
                sa.update(OutboxMessage)
                .where(OutboxMessage.id.in_([job.id for job in dropped]))
                .values(status='dropped', recipients='', claimed_by=None)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        return [row for row in rows if row not in dropped]

    def finish(self, row: OutboxMessage, **values) -> None:
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(claimed_by=None, **values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    def mark_sent(self, row: OutboxMessage) -> None:
        self.finish(row, status='sent', sent_at=utcnow(), attempts=row.attempts + 1)

    def requeue(self, row: OutboxMessage) -> None:
        self.finish(row, status='pending')

    def mark_failed(self, row: OutboxMessage, failure: Exception) -> None:
        attempts = row.attempts + 1
        reason = str(failure)
        period = timedelta(seconds=current_app.config['MAIL_RETRY_PERIOD'])
        expired = utcnow() - row.created_at > period
        if isinstance(failure, PermanentFailure) or expired:
            why = (
                'permanent failure'
                if isinstance(failure, PermanentFailure)
                else ('retry period over')
            )
            self.app.logger.error(
                'outbox: message %s failed (%s, attempt %s): %s',
                row.id,
                why,
                attempts,
                reason,
            )
            self.finish(row, status='failed', attempts=attempts, last_error=reason)
            return
        delay = backoff(attempts)
        self.app.logger.warning(
            'outbox: message %s not sent (attempt %s), retrying in %.0fs: %s',
            row.id,
            attempts,
            delay,
            reason,
        )
        self.finish(
            row,
            status='pending',
            attempts=attempts,
            last_error=reason,
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )


def print_to_console(row: OutboxMessage) -> None:
    """Development delivery with no MAIL_SERVER: print the message (stdout).

    This is a deliberate delivery channel for local work, not a log line.
    """
    out = sys.stdout
    out.write(
        '\n---------- email (no MAIL_SERVER: printed, not sent) ----------\n'
        f'From: {row.sender}\nTo: {row.recipients}\nSubject: {row.subject}\n\n'
        f'{row.text_body}\n'
        '----------------------------------------------------------------\n'
    )
    out.flush()


_senders: 'weakref.WeakSet[OutboxSender]' = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for sender in list(_senders):
        sender.stop(timeout=sender.app.config['MAIL_TIMEOUT'] + 5)


def _wake_after_commit(session: so.Session) -> None:
    if session.info.pop('outbox_wake', False):
        if not has_app_context():
            return
        sender = current_app.extensions.get('outbox')
        if sender is not None and current_app.config['MAIL_SENDER_ENABLED']:
            sender.start()
            sender.wake()


def init_app(app: Flask) -> None:
    sender = OutboxSender(app)
    app.extensions['outbox'] = sender
    _senders.add(sender)
    if (
        app.config['MAIL_SENDER_ENABLED']
        and os.environ.get('FLASK_RUN_FROM_CLI') != 'true'
    ):
        sender.start()

    @app.before_request
    def _ensure_sender() -> None:
        sender.request_started()
        # `flask run` loads the app inside the CLI: start on first request.
        if app.config['MAIL_SENDER_ENABLED'] and not sender.running:
            sender.start()

    @app.teardown_request
    def _request_done(_exc) -> None:
        sender.request_ended()


sa.event.listen(so.Session, 'after_commit', _wake_after_commit)
