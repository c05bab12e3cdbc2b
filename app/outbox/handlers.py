"""Send-time handlers: what builds the message for each kind of row.

A feature whose email must be built at send time registers a handler for
its kind with `@handler('kind')`; the handler gets the claimed row and
returns a `flask_mail.Message`, or None when there is nothing to send (the
row is then dropped). Plain 'email' rows carry their rendered message.
"""

from collections.abc import Callable

from flask import Flask
from flask_mail import Message

from app.dbtypes import utcnow
from app.extensions import db
from app.outbox import queue
from app.outbox.lease import Lease
from app.outbox.models import OutboxMessage
from app.outbox.transport import PermanentFailure, classify, is_permanent

FAILED = object()  # build's answer when the failure is already recorded

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


def prepare(
    app: Flask,
    rows: list[OutboxMessage],
    lease: Lease,
    pause: Callable[[], None] = lambda: None,
) -> list[tuple]:
    """(row, message) for each row its handler built; drop the others, and
    expire those whose time has passed (the lease lets go of all those).

    `pause` is called before each build: a handler queries and commits, so
    a claim of 50 built at once held a busy worker's requests for tens of
    milliseconds (the sender passes its yield_to_requests)."""
    now = utcnow()
    stale = [r for r in rows if r.expires_at and r.expires_at <= now]
    if stale:
        queue.expire(stale)
    ready, dropped = [], []
    for row in rows:
        if row in stale:
            continue
        pause()
        message = build(app, row)
        if message is None:
            dropped.append(row)
        elif message is not FAILED:
            ready.append((row, stamp(row, message)))
    if dropped:
        queue.drop(dropped)
        db.session.commit()
    kept = {row.id for row, _ in ready}
    for row in rows:
        if row.id not in kept:
            lease.release(row.id)
    return ready


def build(app: Flask, row: OutboxMessage):
    """The row's message, None to drop it, or FAILED (already recorded)."""
    make = _handlers.get(row.kind)
    try:
        if make is None:
            raise PermanentFailure(f'no handler for kind {row.kind!r}')
        message = make(row)
        db.session.commit()
        return message
    except Exception as exc:
        db.session.rollback()
        if not isinstance(exc, PermanentFailure):
            app.logger.exception('outbox: handler for %s', row.id)
        failure = classify(exc)
        queue.mark_failed(row, str(failure), is_permanent(failure))
        return FAILED


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
