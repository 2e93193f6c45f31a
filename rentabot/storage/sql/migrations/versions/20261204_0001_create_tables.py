"""create tables

Revision ID: 0001
Revises: 
Create Date: 2026-12-04 21:44:51.736613
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rentabot.storage.sql.schema

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counters'))
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('at', rentabot.storage.sql.schema.UTCDateTime(), nullable=False),
    sa.Column('resource_id', sa.Integer(), nullable=True),
    sa.Column('reservation_id', sa.String(length=64), nullable=True),
    sa.Column('data', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_table('reservations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('ttl', sa.Integer(), nullable=False),
    sa.Column('max_wait_time', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=False),
    sa.Column('expires_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=False),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('token_name', sa.String(length=256), nullable=True),
    sa.Column('fulfilled_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('claim_expires_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('claimed_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('ended_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('resource_ids', sa.Text(), nullable=False),
    sa.Column('lock_tokens', sa.Text(), nullable=False),
    sa.Column('deadline', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations')),
    sa.UniqueConstraint('sequence', name=op.f('uq_reservations_sequence'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservations_deadline'), ['deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservations_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservations_status'), ['status'], unique=False)

    op.create_table('resource_names',
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_resource_names')),
    sa.UniqueConstraint('id', name=op.f('uq_resource_names_id'))
    )
    op.create_table('resources',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('endpoint', sa.Text(), nullable=False),
    sa.Column('tags_text', sa.Text(), nullable=False),
    sa.Column('max_lock_duration', sa.Integer(), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.Column('last_fencing_token', sa.BigInteger(), nullable=False),
    sa.Column('reserved_for', sa.String(length=64), nullable=True),
    sa.Column('lock_token', sa.String(length=64), nullable=True),
    sa.Column('lock_acquired_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('lock_expires_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('lock_fencing_token', sa.BigInteger(), nullable=True),
    sa.Column('lock_label', sa.Text(), nullable=True),
    sa.Column('lock_ip', sa.String(length=64), nullable=True),
    sa.Column('lock_token_name', sa.String(length=256), nullable=True),
    sa.Column('lock_reservation_id', sa.String(length=64), nullable=True),
    sa.Column('expired_acquired_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('expired_at', rentabot.storage.sql.schema.UTCDateTime(), nullable=True),
    sa.Column('expired_fencing_token', sa.BigInteger(), nullable=True),
    sa.Column('expired_label', sa.Text(), nullable=True),
    sa.Column('expired_ip', sa.String(length=64), nullable=True),
    sa.Column('expired_token_name', sa.String(length=256), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resources')),
    sa.UniqueConstraint('name', name=op.f('uq_resources_name'))
    )
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resources_lock_expires_at'), ['lock_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_resources_reserved_for'), ['reserved_for'], unique=False)

    op.create_table('resource_tags',
    sa.Column('resource_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], name=op.f('fk_resource_tags_resource_id_resources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'tag', name=op.f('pk_resource_tags'))
    )
    with op.batch_alter_table('resource_tags', schema=None) as batch_op:
        batch_op.create_index('ix_resource_tags_tag_resource_id', ['tag', 'resource_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('resource_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_tags_tag_resource_id')

    op.drop_table('resource_tags')
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resources_reserved_for'))
        batch_op.drop_index(batch_op.f('ix_resources_lock_expires_at'))

    op.drop_table('resources')
    op.drop_table('resource_names')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservations_status'))
        batch_op.drop_index(batch_op.f('ix_reservations_ended_at'))
        batch_op.drop_index(batch_op.f('ix_reservations_deadline'))

    op.drop_table('reservations')
    op.drop_table('events')
    op.drop_table('counters')
