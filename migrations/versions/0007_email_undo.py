"""pending undos of email changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- email_undo: one row per confirmed email change, open for 7 days. While
  open, its old address can undo the change, must consent to another one,
  and is reserved to the account. Changes made before this upgrade have no
  row: their undo links stop working (they were bound to the address).
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('email_undo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('old_email', sa.String(length=254), nullable=False),
    sa.Column('new_email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_email_undo_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_undo'))
    )
    with op.batch_alter_table('email_undo', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_undo_old_email'), ['old_email'], unique=False)
        batch_op.create_index(batch_op.f('ix_email_undo_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('email_undo', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_undo_user_id'))
        batch_op.drop_index(batch_op.f('ix_email_undo_old_email'))
    op.drop_table('email_undo')
