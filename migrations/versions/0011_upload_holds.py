"""upload_sessions.holder, hold_expires_at: an upload's hold on its own row, not in leases

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_sessions") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True))
    # Replicas of an older version hold uploads through `leases` (`upload:<id>`) instead:
    # upgrade every replica together, as for any migration that changes how they coordinate.
    # Their leftover leases simply expire.


def downgrade() -> None:
    with op.batch_alter_table("upload_sessions") as batch:
        batch.drop_column("hold_expires_at")
        batch.drop_column("holder")
