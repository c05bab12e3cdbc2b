"""outbox priority index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

The claim takes due rows by priority, and a sender asks before each message
whether a row of a higher priority waits (a password reset behind a backlog
of other mail): an index on (status, priority, next_attempt_at) answers both
without reading the backlog.
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(
            'ix_outbox_status_priority',
            ['status', 'priority', 'next_attempt_at'],
            unique=False,
        )
    # Resets already queued take their new place (above confirmations).
    op.execute(
        "UPDATE outbox SET priority = 20 WHERE priority = 10 AND status IN "
        "('pending', 'sending') AND kind IN ('password_reset', 'reset_email')"
    )


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_priority')
