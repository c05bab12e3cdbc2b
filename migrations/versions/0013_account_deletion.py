"""account deletion

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

- user.deleted_at: when the owner deleted the account; hidden at once,
  restorable for ACCOUNT_DELETION_GRACE days, then purged.
- held_post, held_follow: its posts and follows, held aside meanwhile.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'held_post',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('body', sa.String(length=140), nullable=False),
        sa.Column('timestamp', sa.DateTime(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user.id'], name=op.f('fk_held_post_user_id_user')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_held_post')),
    )
    op.create_index(
        op.f('ix_held_post_user_id'), 'held_post', ['user_id'], unique=False
    )
    op.create_table(
        'held_follow',
        sa.Column('follower_id', sa.Integer(), nullable=False),
        sa.Column('followed_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['followed_id'], ['user.id'], name=op.f('fk_held_follow_followed_id_user')
        ),
        sa.ForeignKeyConstraint(
            ['follower_id'], ['user.id'], name=op.f('fk_held_follow_follower_id_user')
        ),
        sa.PrimaryKeyConstraint(
            'follower_id', 'followed_id', name=op.f('pk_held_follow')
        ),
    )
    op.create_index(
        'ix_held_follow_followed_id', 'held_follow', ['followed_id'], unique=False
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_user_deleted_at'), ['deleted_at'], unique=False
        )


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_deleted_at'))
        batch_op.drop_column('deleted_at')
    op.drop_index('ix_held_follow_followed_id', table_name='held_follow')
    op.drop_table('held_follow')
    op.drop_index(op.f('ix_held_post_user_id'), table_name='held_post')
    op.drop_table('held_post')
