"""The queue's SQL: enqueue, claim, lease, finish, backoff and prune.

Claims are atomic (a conditional UPDATE, plus SKIP LOCKED on PostgreSQL),
so several processes can share one outbox without sending a row twice.
"""

import json
import random
import uuid
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
) -> OutboxMessage | None:
    """Add a row in the caller's transaction; the sender is woken on commit.

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
    row = OutboxMessage(
        kind=kind,
        recipients=','.join(recipients),
        payload=json.dumps(data) if data else None,
        priority=priority,
        created_at=now,
        next_attempt_at=now,
        expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
        message_id=make_msgid(domain=sender_domain()),
        **fields,
    )
    db.session.add(row)
    db.session.info['outbox_wake'] = True
    return row


def sender_domain() -> str:
    """Message-IDs are made on the sending domain (MAIL_DEFAULT_SENDER's)."""
    address = parseaddr(current_app.config['MAIL_DEFAULT_SENDER'])[1]
    return address.rpartition('@')[2] or 'localhost'


def claim(limit: int, owner: str) -> list[OutboxMessage]:
    """Take up to `limit` due rows for this sender; returns them detached."""
    now = utcnow()
    token = f'{owner[:48]}:{uuid.uuid4().hex[:12]}'  # fits String(64)
    due = (
        sa.select(OutboxMessage.id)
        .where(OutboxMessage.status == Status.PENDING)
        .where(OutboxMessage.next_attempt_at <= now)
        .order_by(
            OutboxMessage.priority.desc(),
            OutboxMessage.next_attempt_at,
            OutboxMessage.id,
        )
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
    _update(
        sa.and_(OutboxMessage.id.in_(ids), OutboxMessage.status == Status.PENDING),
        status=Status.SENDING,
        claimed_by=token,
        claimed_at=now,
    )
    query = (
        sa.select(OutboxMessage)
        .where(OutboxMessage.claimed_by == token)
        .where(OutboxMessage.status == Status.SENDING)
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
    )
    rows = list(db.session.scalars(query))
    db.session.expunge_all()
    return rows


def release_stale(lease: timedelta) -> None:
    """Return claims of a process that died mid-send to the queue."""
    _update(
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


def mark_sent(row: OutboxMessage) -> None:
    _finish(row, status=Status.SENT, sent_at=utcnow(), attempts=row.attempts + 1)


def requeue(row: OutboxMessage) -> None:
    """Give an unsent row back untouched (the sender is stopping)."""
    _finish(row, status=Status.PENDING)


def mark_failed(row: OutboxMessage, reason: str, permanent: bool) -> bool:
    """Record a failed attempt: retry later, or fail for good. True if final."""
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
        _finish(row, status=Status.FAILED, attempts=attempts, last_error=reason)
        return True
    delay = backoff(attempts)
    current_app.logger.warning(
        'outbox: message %s not sent (attempt %s), retrying in %.0fs: %s',
        row.id,
        attempts,
        delay,
        reason,
    )
    _finish(
        row,
        status=Status.PENDING,
        attempts=attempts,
        last_error=reason,
        next_attempt_at=utcnow() + timedelta(seconds=delay),
    )
    return False


def _finish(row: OutboxMessage, **values) -> None:
    _update(OutboxMessage.id == row.id, claimed_by=None, **values)


def _update(condition, **values) -> None:
    db.session.execute(
        sa.update(OutboxMessage)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
