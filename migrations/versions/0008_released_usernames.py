"""released usernames

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

- released_username: a name given up by a rename, held for its former
  owner until expires_at (USERNAME_HOLD_DAYS after the rename).
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'released_username',
        sa.Column('username_key', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user.id'],
            name=op.f('fk_released_username_user_id_user'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('username_key', name=op.f('pk_released_username')),
    )
    with op.batch_alter_table('released_username', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_released_username_user_id'), ['user_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('released_username', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_released_username_user_id'))
    op.drop_table('released_username')
