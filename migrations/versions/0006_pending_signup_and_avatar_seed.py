"""pending sign-ups and random avatar seeds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

- pending_signup: a sign-up waits here until its address is confirmed, so
  signing up and signing in say the same whether the address is taken.
  Existing accounts are untouched (unconfirmed ones keep their banner).
- user.avatar_seed: local identicons are drawn from a random value, not
  from a hash of the address; every existing account gets its own, made by
  the database's random source (128 bits).
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

RANDOM_HEX = {
    'postgresql': "replace(gen_random_uuid()::text, '-', '')",
    'sqlite': 'lower(hex(randomblob(16)))',
}


def upgrade():
    op.create_table('pending_signup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('username_key', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('expires', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_signup')),
    sa.UniqueConstraint('username_key', name=op.f('uq_pending_signup_username_key'))
    )
    with op.batch_alter_table('pending_signup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_signup_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_signup_expires'), ['expires'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('avatar_seed', sa.String(length=32), nullable=True))
    random_hex = RANDOM_HEX[op.get_bind().dialect.name]
    op.execute(f'UPDATE "user" SET avatar_seed = {random_hex}')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('avatar_seed', existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('avatar_seed')
    with op.batch_alter_table('pending_signup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_signup_expires'))
        batch_op.drop_index(batch_op.f('ix_pending_signup_email'))
    op.drop_table('pending_signup')
