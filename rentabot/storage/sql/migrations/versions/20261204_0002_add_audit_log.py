"""add audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 22:12:45.184038
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rentabot.storage.sql.schema


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', rentabot.storage.sql.schema.UTCDateTime(), nullable=False),
    sa.Column('operation', sa.String(length=128), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('resource_id', sa.Integer(), nullable=True),
    sa.Column('reservation_id', sa.String(length=64), nullable=True),
    sa.Column('token_name', sa.String(length=256), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit'))
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_operation'), ['operation'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_reservation_id'), ['reservation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_token_name'), ['token_name'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_token_name'))
        batch_op.drop_index(batch_op.f('ix_audit_resource_id'))
        batch_op.drop_index(batch_op.f('ix_audit_reservation_id'))
        batch_op.drop_index(batch_op.f('ix_audit_operation'))
        batch_op.drop_index(batch_op.f('ix_audit_at'))

    op.drop_table('audit')
