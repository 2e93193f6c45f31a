"""add unavailability and maintenance

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 22:28:37.518226
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rentabot.storage.sql.schema


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unavailable_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('unavailable_since', rentabot.storage.sql.schema.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('unavailable_until', rentabot.storage.sql.schema.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('unavailable_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('maintenance_windows', sa.Text(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('next_deadline', rentabot.storage.sql.schema.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_resources_next_deadline'), ['next_deadline'], unique=False)

    # Until now only locks had deadlines: the next deadline of a resource is its lock's expiry.
    op.execute("UPDATE resources SET next_deadline = lock_expires_at")



def downgrade() -> None:
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resources_next_deadline'))
        batch_op.drop_column('next_deadline')
        batch_op.drop_column('maintenance_windows')
        batch_op.drop_column('unavailable_source')
        batch_op.drop_column('unavailable_until')
        batch_op.drop_column('unavailable_since')
        batch_op.drop_column('unavailable_reason')

