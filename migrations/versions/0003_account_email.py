"""confirmed email addresses and outbox payloads

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

- user.email_confirmed: existing accounts are marked confirmed; new ones
  confirm through the link emailed at sign-up.
- outbox.payload: JSON a send-time handler needs (an account id), never a
  token.
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_confirmed', sa.Boolean(), nullable=True))
    user = sa.table('user', sa.column('email_confirmed', sa.Boolean))
    op.execute(user.update().values(email_confirmed=True))
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('email_confirmed', existing_type=sa.Boolean(), nullable=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('payload')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('email_confirmed')
