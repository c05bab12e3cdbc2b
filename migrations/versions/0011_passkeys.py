"""passkeys

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

- passkey: an account's WebAuthn credentials (id, COSE public key, sign
  counter, backup flags, transports, name, when added and last used).
- passkey_ceremony: live challenges, each tied to one browser's session
  token (its SHA-256), a purpose and maybe an account; 5 minutes, one use.
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'passkey',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('credential_id', sa.LargeBinary(length=1023), nullable=False),
        sa.Column('user_handle', sa.LargeBinary(length=64), nullable=False),
        sa.Column('public_key', sa.LargeBinary(length=2048), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('backup_eligible', sa.Boolean(), nullable=False),
        sa.Column('backed_up', sa.Boolean(), nullable=False),
        sa.Column('transports', sa.String(length=128), nullable=False),
        sa.Column('aaguid', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user.id'],
            name=op.f('fk_passkey_user_id_user'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_passkey_credential_id')),
    )
    op.create_index(op.f('ix_passkey_user_id'), 'passkey', ['user_id'], unique=False)
    op.create_table(
        'passkey_ceremony',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('challenge', sa.LargeBinary(length=64), nullable=False),
        sa.Column('user_handle', sa.LargeBinary(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user.id'],
            name=op.f('fk_passkey_ceremony_user_id_user'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey_ceremony')),
    )
    op.create_index(
        op.f('ix_passkey_ceremony_token_hash'), 'passkey_ceremony', ['token_hash'],
        unique=False,
    )
    op.create_index(
        op.f('ix_passkey_ceremony_created_at'), 'passkey_ceremony', ['created_at'],
        unique=False,
    )


def downgrade():
    op.drop_index(
        op.f('ix_passkey_ceremony_created_at'), table_name='passkey_ceremony'
    )
    op.drop_index(op.f('ix_passkey_ceremony_token_hash'), table_name='passkey_ceremony')
    op.drop_table('passkey_ceremony')
    op.drop_index(op.f('ix_passkey_user_id'), table_name='passkey')
    op.drop_table('passkey')
