"""re-authentication and a second factor

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

- user_session.proven_at: the session's last proof of identity.
- user_session.device_hash: the SHA-256 of the browser's device cookie.
- authenticator: an account's sealed TOTP secret and last used time step.
- recovery_code: single-use recovery codes, as SHA-256 digests.
- pending_sign_in: a right password waiting for its second step.
- known_device: the browsers (device cookies) each account signed in from,
  and until when each is trusted to skip the second step.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _user_fk(table):
    return sa.ForeignKeyConstraint(
        ['user_id'], ['user.id'],
        name=op.f(f'fk_{table}_user_id_user'), ondelete='CASCADE',
    )


def upgrade():
    op.create_table(
        'authenticator',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('secret', sa.String(length=255), nullable=False),
        sa.Column('enabled_at', sa.DateTime(), nullable=False),
        sa.Column('last_step', sa.Integer(), nullable=False),
        _user_fk('authenticator'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_authenticator')),
    )
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        _user_fk('recovery_code'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_code')),
    )
    op.create_index(
        op.f('ix_recovery_code_user_id'), 'recovery_code', ['user_id'], unique=False
    )
    op.create_table(
        'pending_sign_in',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('remember', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        _user_fk('pending_sign_in'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_sign_in')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_pending_sign_in_token_hash')),
    )
    op.create_index(
        op.f('ix_pending_sign_in_user_id'), 'pending_sign_in', ['user_id'], unique=False
    )
    op.create_table(
        'known_device',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('device_hash', sa.String(length=64), nullable=False),
        sa.Column('first_seen', sa.DateTime(), nullable=False),
        sa.Column('trusted_until', sa.DateTime(), nullable=True),
        _user_fk('known_device'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_known_device')),
        sa.UniqueConstraint(
            'user_id', 'device_hash', name=op.f('uq_known_device_user_id')
        ),
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proven_at', sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'device_hash', sa.String(length=64), nullable=False, server_default=''
            )
        )


def downgrade():
    op.drop_table('known_device')
    op.drop_index(op.f('ix_pending_sign_in_user_id'), table_name='pending_sign_in')
    op.drop_table('pending_sign_in')
    op.drop_index(op.f('ix_recovery_code_user_id'), table_name='recovery_code')
    op.drop_table('recovery_code')
    op.drop_table('authenticator')
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_column('device_hash')
        batch_op.drop_column('proven_at')
