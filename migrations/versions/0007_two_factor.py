"""re-authentication and a second factor

Revision ID: 0007_two_factor
Revises: 0006_released_usernames
Create Date: 2026-12-02

- user_session.proven_at: the session's last proof of identity.
- user_session.device_hash: the SHA-256 of the browser's device cookie.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_two_factor'
down_revision = '0006_released_usernames'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proven_at', sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'device_hash', sa.String(length=64), nullable=False, server_default=''
            )
        )


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_column('device_hash')
        batch_op.drop_column('proven_at')
