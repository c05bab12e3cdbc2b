"""outbox priority, expiry and Message-ID

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Queued rows keep priority 0 and no expiry; new ones get a Message-ID when
they are queued.
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=255), nullable=True))
    outbox = sa.table('outbox', sa.column('priority', sa.Integer))
    op.execute(outbox.update().values(priority=0))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('priority', existing_type=sa.Integer(), nullable=False)


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('message_id')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('priority')
