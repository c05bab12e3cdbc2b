"""The sender: claims due rows, builds each message, sends a batch at once.

It knows no feature. A feature whose email must be built at send time
registers a handler for its kind with `@handler('kind')`; the handler gets
the claimed row and returns a `flask_mail.Message`, or None when there is
nothing to send (the row is then dropped). Plain 'email' rows carry their
rendered message.
"""

import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask_mail import Message

from app.dbtypes import utcnow
from app.extensions import db
from app.outbox import queue, upkeep
from app.outbox.models import OutboxMessage
from app.outbox.transport import (
    PermanentFailure,
    TransientFailure,
    classify,
    classify_send,
)

BATCH_SIZE = 50
FAILED = object()  # _build's answer when the failure is already recorded
UPKEEP_EVERY = 60.0  # seconds between lease releases and prunes

Handler = Callable[[OutboxMessage], Message | None]
_handlers: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that builds the message for rows of `kind`."""

    def register(func: Handler) -> Handler:
        _handlers[kind] = func
        return func

    return register


@handler('email')
def rendered_message(row: OutboxMessage) -> Message:
    return Message(
        subject=row.subject,
        sender=row.sender,
        recipients=row.recipient_list,
        body=row.text_body,
        html=row.html_body,
    )


class OutboxSender:
    """Drains the outbox, in a background thread or in the foreground."""

    def __init__(self, app: Flask, transport):
        self.app = app
        self.transport = transport
        self.name = f'{socket.gethostname()}:{os.getpid()}'
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_upkeep = float('-inf')
        self._requests_lock = threading.Lock()
        self.active_requests = 0  # requests this process is serving now
        self.last_request = float('-inf')  # when one last started or ended

    # Lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run in a daemon thread of this process (idempotent)."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run_forever, name='outbox-sender', daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the message in hand, leave the rest queued, and return."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run_forever(self) -> None:
        """Pass after pass until stopped; idle, wait for a wake-up or a poll."""
        poll = float(self.app.config['MAIL_POLL_INTERVAL'])
        self._stop.clear()
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

    # Sharing the process with requests: pages first, email right after.

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

        It still makes progress, one message per MAIL_SENDER_YIELD at least.
        """
        deadline = time.monotonic() + self.app.config['MAIL_SENDER_YIELD']
        while not self._stop.is_set():
            now = time.monotonic()
            busy = self.active_requests > 0 or now - self.last_request < 0.005
            if not busy or now >= deadline:
                return
            time.sleep(0.002)

    # One pass: claim a batch, build its messages, send over one connection.

    def run_once(self) -> int:
        """Claim and process due messages; returns how many were handled."""
        config = self.app.config
        try:
            if time.monotonic() - self._last_upkeep > UPKEEP_EVERY:
                lease = 4 * config['MAIL_TIMEOUT'] + 60
                queue.release_stale(timedelta(seconds=lease))
                queue.prune(timedelta(seconds=config['MAIL_RETENTION']))
                upkeep.run(self.app)  # features' periodic tasks (account purge)
                self._last_upkeep = time.monotonic()
            rows = queue.claim(BATCH_SIZE, self.name)
        finally:
            db.session.remove()
        if not rows:
            return 0
        try:
            self.deliver(rows)
        finally:
            db.session.remove()
        return len(rows)

    def prepare(self, rows: list[OutboxMessage]) -> list[tuple]:
        """(row, message) for each row its handler built; drop the others,
        and expire those whose time has passed."""
        now = utcnow()
        stale = [r for r in rows if r.expires_at and r.expires_at <= now]
        if stale:
            queue.expire(stale)
        ready, dropped = [], []
        for row in rows:
            if row in stale:
                continue
            message = self._build(row)
            if message is None:
                dropped.append(row)
            elif message is not FAILED:
                ready.append((row, stamp(row, message)))
        if dropped:
            queue.drop(dropped)
            db.session.commit()
        return ready

    def _build(self, row: OutboxMessage):
        """The row's message, None to drop it, or FAILED (already recorded)."""
        build = _handlers.get(row.kind)
        try:
            if build is None:
                raise PermanentFailure(f'no handler for kind {row.kind!r}')
            message = build(row)
            db.session.commit()
            return message
        except Exception as exc:
            db.session.rollback()
            if not isinstance(exc, PermanentFailure):
                self.app.logger.exception('outbox: handler for %s', row.id)
            failure = classify(exc)
            queue.mark_failed(row, str(failure), _is_permanent(failure))
            return FAILED

    def deliver(self, rows: list[OutboxMessage]) -> None:
        self.yield_to_requests()
        pending = self.prepare(rows)
        if not pending:
            return
        try:
            with self.transport.open() as send:
                while pending:
                    self.yield_to_requests()
                    self._send_one(send, *pending[0])
                    pending.pop(0)
                    if self._stop.is_set():
                        break  # finish the message in hand, leave the rest
        except Exception as exc:
            # The connection is unusable: every message still in hand waits
            # for its next try, so a server that is down is not hammered.
            failure = classify(exc)
            for row, _ in pending:
                queue.mark_failed(row, str(failure), _is_permanent(failure))
            if not pending:
                self.app.logger.warning('outbox: closing connection: %s', failure)
            return
        for row, _ in pending:
            queue.requeue(row)

    @staticmethod
    def _send_one(send, row: OutboxMessage, message: Message) -> None:
        """Send one message; raise only when the connection itself failed."""
        try:
            send(message)
        except Exception as exc:  # classified below
            failure = classify_send(exc)
            if isinstance(failure, TransientFailure) and failure.connection:
                raise
            queue.mark_failed(row, str(failure), _is_permanent(failure))
        else:
            queue.mark_sent(row)


def stamp(row: OutboxMessage, message: Message) -> Message:
    """The headers every message carries: the row's Message-ID (the same at
    every attempt), Date, and that a machine sent it."""
    if row.message_id:
        message.msgId = row.message_id
    headers = dict(message.extra_headers or {})
    headers['Auto-Submitted'] = 'auto-generated'
    headers['X-Microblog-Outbox-Id'] = str(row.id)
    message.extra_headers = headers
    return message


def _is_permanent(failure: Exception) -> bool:
    return isinstance(failure, PermanentFailure)
