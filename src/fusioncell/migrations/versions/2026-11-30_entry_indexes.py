"""entry: no index on leaf_hash; the replay check keyed by (key_id, created_at, nonce)

Indexes keyed by a hash or a random nonce grow at random places; on SQLite every group commit then rewrites a
page of each per entry. Leaf hashes are looked up in the sequencer's in-memory tree instead, and devices sign
in time order, so (key_id, created_at, nonce) grows at each key's end.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:45:00
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_constraint('uq_entry_leaf_hash', type_='unique')
        batch_op.drop_constraint('uq_entry_key_id_nonce', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_entry_key_id_created_at_nonce'),
                                          ['key_id', 'created_at', 'nonce'])


def downgrade() -> None:
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_entry_key_id_created_at_nonce'), type_='unique')
        batch_op.create_unique_constraint('uq_entry_key_id_nonce', ['key_id', 'nonce'])
        batch_op.create_unique_constraint('uq_entry_leaf_hash', ['leaf_hash'])
