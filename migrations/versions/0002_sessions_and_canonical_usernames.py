"""server-side sessions and canonical usernames

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

- user_session: one row per signed-in browser (replaces user.session_token;
  everyone is signed out once by this upgrade).
- user.username_key: NFKC + case-folded username, unique. Existing names
  that collide in this form ("Carol" and "carol") keep the oldest account's
  name; each later one is renamed to "<name>-<id>" (e.g. "carol-42") and the
  upgrade prints every rename. Nothing else changes.
"""
import secrets
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def canonical(name):
    return unicodedata.normalize('NFKC', name).casefold()


def fill_username_keys():
    conn = op.get_bind()
    user = sa.table('user', sa.column('id', sa.Integer),
                    sa.column('username', sa.String), sa.column('username_key', sa.String))
    seen = set()
    rows = conn.execute(sa.select(user.c.id, user.c.username).order_by(user.c.id)).all()
    for user_id, username in rows:
        key = canonical(username)[:64]
        if key in seen:
            new_name = f'{username[:50]}-{user_id}'
            print(f'0002: username {username!r} (id {user_id}) collides; renamed to {new_name!r}')
            username, key = new_name, canonical(new_name)
        seen.add(key)
        conn.execute(sa.update(user).where(user.c.id == user_id)
                     .values(username=username, username_key=key))


def upgrade():
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.Column('agent_family', sa.String(length=128), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username_key', sa.String(length=64), nullable=True))
    fill_username_keys()
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('username_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(batch_op.f('ix_user_username'))
        batch_op.drop_index(batch_op.f('ix_user_session_token'))
        batch_op.create_index(batch_op.f('ix_user_username_key'), ['username_key'], unique=True)
        batch_op.drop_column('session_token')


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    user = sa.table('user', sa.column('id', sa.Integer), sa.column('session_token', sa.String))
    for (user_id,) in conn.execute(sa.select(user.c.id)).all():
        token = secrets.token_urlsafe(24)
        conn.execute(sa.update(user).where(user.c.id == user_id).values(session_token=token))
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(batch_op.f('ix_user_username_key'))
        batch_op.create_index(batch_op.f('ix_user_session_token'), ['session_token'], unique=True)
        batch_op.create_index(batch_op.f('ix_user_username'), ['username'], unique=True)
        batch_op.drop_column('username_key')

    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
    op.drop_table('user_session')
