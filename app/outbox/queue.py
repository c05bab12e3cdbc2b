"""The queue's SQL: enqueue, claim, lease, finish, backoff and prune.

Claims are atomic (a conditional UPDATE, plus SKIP LOCKED on PostgreSQL),
so several processes can share one outbox without sending a row twice. A
claimed row keeps its claim token (`claimed_by`) once sent or failed; every
change a sender makes to a row it claimed is conditional on that token, so a
sender whose lease ran out (app/outbox/lease.py) changes nothing.
"""

import json
import random
from datetime import timedelta
from email.utils import make_msgid, parseaddr

import sqlalchemy as sa
from flask import current_app

from app.budgets import mail_allowed
from app.dbtypes import utcnow
from app.extensions import db
from app.outbox.models import OutboxMessage, Priority, Status

FIRST_RETRY = 2.0  # seconds
MAX_BACKOFF = 3600.0


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from FIRST_RETRY, full jitter."""
    ceiling = min(MAX_BACKOFF, FIRST_RETRY * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def enqueue(
    kind: str,
    recipients: list[str],
    data: dict | None = None,
    priority: int = Priority.NORMAL,
    expires_in: int | None = None,
    budget: str | None = None,
    **fields,
) -> int | None:
    """Add a row in the caller's transaction and return its id; the sender
    is woken on commit.

    `data` (JSON) is what the kind's handler needs to build the message;
    urgent rows are sent first; a row unsent after `expires_in` seconds
    expires instead of arriving late. Every email a request causes passes
    the mail budget named `budget` (default: the kind): over it, nothing is
    queued and None is returned (app.budgets.mail_allowed).
    """
    account = (data or {}).get('user')
    if not mail_allowed(budget or kind, recipients, account):
        return None
    now = utcnow()
    row = {
        'kind': kind,
        'recipients': ','.join(recipients),
        'payload': json.dumps(data) if data else None,
        'priority': priority,
        'created_at': now,
        'next_attempt_at': now,
        'expires_at': now + timedelta(seconds=expires_in) if expires_in else None,
        'message_id': make_msgid(domain=sender_domain()),
        **fields,
    }
    # A Core INSERT, not an ORM object: on the reset form, the unit of
    # work's flush cost twice the statement itself. Given to the session (not
    # its connection), so a GET on PostgreSQL leaves autocommit first.
    queued = db.session.execute(_INSERT, row).scalar_one()
    db.session.info['outbox_wake'] = True
    return queued


_INSERT = sa.insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id)


def sender_domain() -> str:
    """Message-IDs are made on the sending domain (MAIL_DEFAULT_SENDER's)."""
    address = parseaddr(current_app.config['MAIL_DEFAULT_SENDER'])[1]
    return address.rpartition('@')[2] or 'localhost'


def claim(limit: int, token: str) -> list[OutboxMessage]:
    """Take up to `limit` due rows under `token`; returns them detached,
    highest priority first.

    One statement: the UPDATE takes the rows its subquery picks, and the
    status condition makes the claim atomic (on PostgreSQL, SKIP LOCKED lets
    concurrent claims pick different rows instead of waiting).
    """
    now = utcnow()
    order = (
        OutboxMessage.priority.desc(),
        OutboxMessage.next_attempt_at,
        OutboxMessage.id,
    )
    due = (
        sa.select(OutboxMessage.id)
        .where(OutboxMessage.status == Status.PENDING)
        .where(OutboxMessage.next_attempt_at <= now)
        .order_by(*order)
        .limit(limit)
    )
    if db.engine.dialect.name == 'postgresql':
        due = due.with_for_update(skip_locked=True)
    taken = (
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .where(OutboxMessage.status == Status.PENDING)
        .values(status=Status.SENDING, claimed_by=token, claimed_at=now)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    rows = list(db.session.scalars(taken))
    db.session.expunge_all()
    db.session.commit()
    return sorted(rows, key=lambda r: (-r.priority, r.next_attempt_at, r.id))


def renew(token: str, ids: frozenset[int]) -> int:
    """Renew the lease on these rows; returns how many are still ours."""
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == token)
        .values(claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def waiting_above(priority: int) -> bool:
    """A due row of a higher priority than `priority` waits."""
    found = db.session.scalar(
        sa.select(OutboxMessage.id)
        .where(OutboxMessage.status == Status.PENDING)
        .where(OutboxMessage.priority > priority)
        .where(OutboxMessage.next_attempt_at <= utcnow())
        .limit(1)
    )
    db.session.rollback()  # ends the read; nothing was written
    return found is not None


def backlog() -> sa.Select:
    """(kind, priority, count, oldest created_at) of the rows still to send,
    highest priority first."""
    return (
        sa.select(
            OutboxMessage.kind,
            OutboxMessage.priority,
            sa.func.count(),
            sa.func.min(OutboxMessage.created_at),
        )
        .where(OutboxMessage.status.in_(Status.IN_QUEUE))
        .group_by(OutboxMessage.kind, OutboxMessage.priority)
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.kind)
    )


def release_stale(lease: timedelta) -> int:
    """Return claims not renewed for `lease` (their sender died) to the queue."""
    return _update(
        sa.and_(
            OutboxMessage.status == Status.SENDING,
            OutboxMessage.claimed_at < utcnow() - lease,
        ),
        status=Status.PENDING,
        claimed_by=None,
    )


def prune(retention: timedelta) -> None:
    """Delete sent and dropped rows older than `retention`."""
    db.session.execute(
        sa.delete(OutboxMessage)
        .where(
            OutboxMessage.status.in_(Status.DONE),
            OutboxMessage.created_at < utcnow() - retention,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def rewrite(row: OutboxMessage, **values) -> None:
    """Change a claimed row's kind or recipients (no commit: the caller's)."""
    for name, value in values.items():
        setattr(row, name, value)
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == row.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def drop(rows: list[OutboxMessage]) -> None:
    """Nothing to send for these rows (no commit: the caller's)."""
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_([row.id for row in rows]))
        .values(status=Status.DROPPED, recipients='', claimed_by=None)
        .execution_options(synchronize_session=False)
    )


def expire(rows: list[OutboxMessage]) -> None:
    """These rows waited past their expires_at: never send them late."""
    for row in rows:
        current_app.logger.warning(
            'outbox: message %s expired unsent (queued %s, attempts %s): its '
            'link would have arrived stale',
            row.id,
            row.created_at.isoformat(timespec='seconds'),
            row.attempts,
        )
    _update(
        OutboxMessage.id.in_([row.id for row in rows]),
        status=Status.EXPIRED,
        recipients='',
        claimed_by=None,
    )


def mark_sent(row: OutboxMessage) -> bool:
    """Record a sent row, if this sender still holds it. True if it did."""
    return _finish(row, status=Status.SENT, sent_at=utcnow(), attempts=row.attempts + 1)


def requeue(rows: list[OutboxMessage]) -> None:
    """Give unsent rows back untouched, due at once (those still ours)."""
    for row in rows:
        _finish(row, status=Status.PENDING, claimed_by=None)


def mark_failed(row: OutboxMessage, reason: str, permanent: bool) -> bool:
    """Record a failed attempt: retry later, or fail for good. True if this
    sender still held the row."""
    attempts = row.attempts + 1
    period = timedelta(seconds=current_app.config['MAIL_RETRY_PERIOD'])
    if permanent or utcnow() - row.created_at > period:
        why = 'permanent failure' if permanent else 'retry period over'
        current_app.logger.error(
            'outbox: message %s failed (%s, attempt %s): %s',
            row.id,
            why,
            attempts,
            reason,
        )
        return _finish(row, status=Status.FAILED, attempts=attempts, last_error=reason)
    delay = backoff(attempts)
    current_app.logger.warning(
        'outbox: message %s not sent (attempt %s), retrying in %.0fs: %s',
        row.id,
        attempts,
        delay,
        reason,
    )
    return _finish(
        row,
        status=Status.PENDING,
        claimed_by=None,
        attempts=attempts,
        last_error=reason,
        next_attempt_at=utcnow() + timedelta(seconds=delay),
    )


def _finish(row: OutboxMessage, **values) -> bool:
    """Change a claimed row only while it is still claimed under the token it
    was loaded with (its lease may have run out: then change nothing)."""
    return bool(
        _update(
            sa.and_(
                OutboxMessage.id == row.id,
                OutboxMessage.status == Status.SENDING,
                OutboxMessage.claimed_by == row.claimed_by,
            ),
            **values,
        )
    )


def _update(condition, **values) -> int:
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount
