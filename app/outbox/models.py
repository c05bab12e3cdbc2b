"""The outbox table: every email the app has accepted, until it is pruned."""

import json
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db


class Status:
    """The life of an outbox row: pending -> sending -> sent | failed |
    dropped | expired.

    A transient failure puts a row back to pending with a later
    next_attempt_at; a handler that finds nothing to send drops it; a row
    still unsent at its expires_at (its link would be stale) expires.
    """

    PENDING = 'pending'
    SENDING = 'sending'
    SENT = 'sent'
    FAILED = 'failed'
    DROPPED = 'dropped'
    EXPIRED = 'expired'
    ALL = (PENDING, SENDING, SENT, FAILED, DROPPED, EXPIRED)
    IN_QUEUE = (PENDING, SENDING)
    DONE = (SENT, DROPPED, EXPIRED)


class Priority:
    """Higher goes first: someone is waiting for a link. A password reset
    goes before everything else: a sender gives back the rest of a claim as
    soon as a row of a higher priority is due."""

    NORMAL = 0
    URGENT = 10  # confirmations
    RESET = 20  # password resets
    TOP = RESET


class OutboxMessage(db.Model):
    """An email the app has accepted; a sender delivers it.

    Kind 'email' rows hold a rendered message. Other kinds hold only what a
    feature's send-time handler needs (see app.outbox.sender.handler); the
    handler builds the message at each attempt and nothing rendered is
    written back.
    """

    __tablename__ = 'outbox'
    __table_args__ = (
        sa.Index('ix_outbox_status_next', 'status', 'next_attempt_at'),
        # The claim's order, and "is a higher priority waiting?" per message.
        sa.Index('ix_outbox_status_priority', 'status', 'priority', 'next_attempt_at'),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(32), default='email')
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default=Status.PENDING)
    sender: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    recipients: so.Mapped[str] = so.mapped_column(sa.Text)
    subject: so.Mapped[str] = so.mapped_column(sa.String(255), default='')
    text_body: so.Mapped[str] = so.mapped_column(sa.Text, default='')
    html_body: so.Mapped[str | None] = so.mapped_column(sa.Text)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(
        UTCDateTime(), default=utcnow
    )
    # When the holding sender last renewed its lease (app/outbox/lease.py),
    # and its claim token: kept once sent or failed, to say who sent it.
    claimed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    claimed_by: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    last_error: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    # JSON for the kind's handler (for example an account id); never a token.
    payload: so.Mapped[str | None] = so.mapped_column(sa.Text)
    priority: so.Mapped[int] = so.mapped_column(default=Priority.NORMAL)
    # Not sent after this (a link it carries would arrive stale).
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # Made once at enqueue and kept across retries: matches provider logs.
    message_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))

    def __repr__(self) -> str:
        return f'<OutboxMessage {self.id} {self.kind} {self.status}>'

    @property
    def data(self) -> dict:
        return json.loads(self.payload) if self.payload else {}

    @property
    def recipient_list(self) -> list[str]:
        return [r for r in self.recipients.split(',') if r]
