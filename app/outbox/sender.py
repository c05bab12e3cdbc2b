"""The sender: claims due rows under a lease, builds each message (see
app/outbox/handlers.py), sends them over one connection, and records each
result exactly once.

It knows no feature: features register send-time handlers with `handler`.
"""

import os
import socket
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.outbox import queue, upkeep
from app.outbox.handlers import handler, prepare
from app.outbox.lease import Lease
from app.outbox.models import OutboxMessage, Priority
from app.outbox.transport import Link, TransientFailure, classify_send, is_permanent

__all__ = ['OutboxSender', 'handler']

MAX_CLAIM = 50
UPKEEP_EVERY = 60.0  # seconds between prunes


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
        self._last_release = float('-inf')
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
        """Pass after pass until stopped; idle, wait for a wake-up or a poll.

        While passes fail (say the database is down or not created yet), the
        failure is logged once and the wait doubles, up to a minute.
        """
        poll = float(self.app.config['MAIL_POLL_INTERVAL'])
        failures = 0
        self._stop.clear()
        while not self._stop.is_set():
            busy = False
            try:
                with self.app.app_context():
                    busy = self.run_once() > 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    self._log_failure(exc)
            else:
                if failures:
                    self.app.logger.info(
                        'outbox: sender works again after %d failed passes', failures
                    )
                failures = 0
            if not busy:
                self._wake.wait(min(poll * 2**failures, 60.0) if failures else poll)
                self._wake.clear()

    def _log_failure(self, exc: Exception) -> None:
        # A database that does not answer is one line; anything else, a bug,
        # keeps its traceback.
        if isinstance(exc, OperationalError):
            reason = ' '.join(str(exc.orig or exc).split())[:300]
            self.app.logger.error(
                'outbox: the database does not answer (%s): retrying with '
                'back-off, logged again when it does',
                reason,
            )
        else:
            self.app.logger.exception('outbox: sender loop error')

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

    # One pass: claim what can be sent within a lease, send it over one
    # connection, claim again, until nothing is due.

    def run_once(self) -> int:
        """Claim and process due messages; returns how many were handled."""
        handled = 0
        lease = Lease(self.app, self.name)
        link = Link(self.transport)
        try:
            while not self._stop.is_set():
                since = time.monotonic()
                try:
                    self._upkeep()  # also during a long pass: dead senders' rows
                    rows = queue.claim(self.claim_size(), lease.token)
                finally:
                    db.session.remove()
                if not rows:
                    break
                lease.hold([row.id for row in rows], since)
                handled += len(rows)
                if not self.deliver(rows, lease, link):
                    break
        finally:
            link.close()
            lease.end()
            db.session.remove()
        return handled

    def claim_size(self) -> int:
        """As many messages as can be sent within a lease, at MAIL_TIMEOUT
        each: even if no renewal got through, the lease outlasts the claim."""
        config = self.app.config
        fits = int(config['MAIL_LEASE'] // max(config['MAIL_TIMEOUT'], 0.001))
        return max(1, min(MAX_CLAIM, fits))

    def _upkeep(self) -> None:
        config = self.app.config
        now = time.monotonic()
        if now - self._last_release > config['MAIL_LEASE'] / 3:
            lease = timedelta(seconds=config['MAIL_LEASE'])
            released = queue.release_stale(lease)
            if released:
                self.app.logger.warning(
                    'outbox: %s message(s) back in the queue: their sender '
                    'stopped renewing its claim (it died or lost the database); '
                    'the one it had in hand may be sent again, with its '
                    'Message-ID',
                    released,
                )
            self._last_release = now
        if now - self._last_upkeep > UPKEEP_EVERY:
            queue.prune(timedelta(seconds=config['MAIL_RETENTION']))
            upkeep.run(self.app)  # features' periodic tasks (account purge)
            self._last_upkeep = now

    def deliver(self, rows: list[OutboxMessage], lease: Lease, link) -> bool:
        """Send a claim's messages; False when the pass should end (stopping,
        lease lost or running out, connection failed)."""
        pending = prepare(self.app, rows, lease, pause=self.yield_to_requests)
        go_on, first = True, True
        while pending:
            row, message = pending[0]
            go_on = self._may_send(row, lease, first)
            first = False
            if go_on is not True:
                break
            self.yield_to_requests()
            try:
                link.send(message)
            except Exception as exc:  # classified below
                failure = classify_send(exc)
                if isinstance(failure, TransientFailure) and failure.connection:
                    # The connection is unusable: every message still in hand
                    # waits for its next try, so a server that is down is not
                    # hammered.
                    link.close()
                    for held, _ in pending:
                        self.book(lease, held, queue.mark_failed, failure)
                    return False
                self.book(lease, row, queue.mark_failed, failure)
            else:
                self.book(lease, row, queue.mark_sent)
            pending.pop(0)
        self.give_back([row for row, _ in pending], lease)
        return go_on is not False and not lease.lost

    def _may_send(self, row: OutboxMessage, lease: Lease, first: bool):
        """True to send `row` now; None to give the rest of the claim back
        and claim again (a higher priority waits); False to end the pass.
        (A claim's first row is the highest priority due: no need to ask.)"""
        if self._stop.is_set() or lease.lost:
            return False  # finish the message in hand, leave the rest
        config = self.app.config
        if lease.left() < min(config['MAIL_TIMEOUT'], config['MAIL_LEASE'] / 2):
            self.app.logger.warning(
                'outbox: the lease of sender %s was not renewed in time; '
                'giving its unsent messages back',
                lease.token,
            )
            return False
        if first or row.priority >= Priority.TOP:
            return True
        return None if queue.waiting_above(row.priority) else True

    def book(self, lease: Lease, row: OutboxMessage, record, *failure) -> None:
        """Record what happened to a message the server has seen. After a
        database error, roll back and try again on a fresh connection (never
        sending the message again for it) for as long as the lease holds."""
        args = (str(failure[0]), is_permanent(failure[0])) if failure else ()
        delay = 0.05
        while True:
            try:
                held = record(row, *args)
                break
            except sa.exc.SQLAlchemyError as exc:
                db.session.rollback()  # the pool replaces a dropped connection
                if delay == 0.05:
                    self.app.logger.warning(
                        'outbox: message %s: recording its result failed (%s); '
                        'retrying on a fresh connection, without sending it again',
                        row.id,
                        type(exc).__name__,
                    )
                if lease.left() < delay or (self._stop.is_set() and delay >= 1):
                    self.app.logger.error(
                        'outbox: message %s: the mail server answered but the '
                        'database would not take the record; it stays claimed '
                        'until its lease ends and may then be sent again',
                        row.id,
                    )
                    lease.lost = True  # end this pass; the next starts afresh
                    return
                time.sleep(delay)
                delay = min(2 * delay, 1.0)
        lease.release(row.id)
        if not held:
            lease.lost = True
            self.app.logger.error(
                'outbox: sender %s lost its claim on message %s before recording '
                'it (its lease was not renewed in time; if it was sent, it may '
                'arrive twice): stopping this batch',
                lease.token,
                row.id,
            )

    def give_back(self, rows: list[OutboxMessage], lease: Lease) -> None:
        """Unsent rows go back to the queue now, not when the lease ends."""
        for row in rows:
            lease.release(row.id)
        for _ in range(3):
            try:
                queue.requeue(rows)
                return
            except sa.exc.SQLAlchemyError:
                db.session.rollback()
                time.sleep(0.1)
        # Left claimed: back in the queue when the lease ends.
