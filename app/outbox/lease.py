"""A sender's hold on the rows it claimed, renewed while it works.

A claim is a lease of MAIL_LEASE seconds: rows a sender has held longer
without renewing go back to the queue (`queue.release_stale`), so the rows of
a sender that died are sent by another within about MAIL_LEASE * 4/3
seconds. A live sender renews its rows every third of the lease from a
heartbeat thread, whatever the message in hand is waiting on; if a renewal
finds a row taken back, the lease is lost and the sender stops at once.
"""

import threading
import time
import uuid

from flask import Flask

from app.extensions import db
from app.outbox import queue


class Lease:
    """The rows one sender holds under one claim token."""

    def __init__(self, app: Flask, owner: str):
        self.app = app
        self.seconds = float(app.config['MAIL_LEASE'])
        self.token = f'{owner[:48]}:{uuid.uuid4().hex[:12]}'  # fits String(64)
        self.held: set[int] = set()
        self.expires = float('-inf')  # time.monotonic() when the hold may end
        self.lost = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, ids: list[int], since: float) -> None:
        """Rows just claimed (at `since`, time.monotonic()) are ours."""
        self.held.update(ids)
        self.expires = since + self.seconds
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._beat, name='outbox-lease', daemon=True
            )
            self._thread.start()

    def release(self, row_id: int) -> None:
        """This row no longer needs holding (finished or given back)."""
        self.held.discard(row_id)

    def left(self) -> float:
        """Seconds before another sender may take our rows back."""
        return self.expires - time.monotonic()

    def renew(self) -> None:
        """Push our rows' lease forward; note it if any was taken back."""
        held = frozenset(self.held)
        if not held or self.lost:
            return
        started = time.monotonic()
        with self.app.app_context():
            try:
                renewed = queue.renew(self.token, held)
            finally:
                db.session.remove()
        if renewed < len(held):
            self.lost = True
            self.app.logger.error(
                'outbox: sender %s lost its claim on %s message(s) (held past '
                'MAIL_LEASE without a renewal); stopping this batch',
                self.token,
                len(held) - renewed,
            )
        else:
            self.expires = started + self.seconds

    def end(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(self.seconds)

    def _beat(self) -> None:
        while not self._done.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception as exc:  # the database is down: keep trying
                self.app.logger.warning(
                    'outbox: could not renew the lease of sender %s: %s',
                    self.token,
                    type(exc).__name__,
                )
