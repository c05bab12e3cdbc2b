"""security log

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

- security_event: an account's security events for its owner to read
  (/security_log); user_id is NULL for the anonymous line a purged
  account leaves.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'security_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('browser', sa.String(length=160), nullable=False),
        sa.Column('detail', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user.id'], name=op.f('fk_security_event_user_id_user')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_security_event')),
    )
    op.create_index(
        'ix_security_event_user_time',
        'security_event',
        ['user_id', 'created_at', 'id'],
        unique=False,
    )
    op.create_index(
        op.f('ix_security_event_created_at'),
        'security_event',
        ['created_at'],
        unique=False,
    )


def downgrade():
    op.drop_index(op.f('ix_security_event_created_at'), table_name='security_event')
    op.drop_index('ix_security_event_user_time', table_name='security_event')
    op.drop_table('security_event')
