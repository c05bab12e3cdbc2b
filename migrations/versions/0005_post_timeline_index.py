"""post timeline index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

The (timestamp, id) index gains user_id, so a timeline can be found by
walking the newest posts on the index alone.
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.create_index(
            'ix_post_timeline', ['timestamp', 'id', 'user_id'], unique=False
        )
        batch_op.drop_index('ix_post_timestamp_id')


def downgrade():
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.create_index('ix_post_timestamp_id', ['timestamp', 'id'], unique=False)
        batch_op.drop_index('ix_post_timeline')
