"""upload_sessions.ended_at: a session's row is written at its first bytes now
(registry.service.signed_upload_ids), and kept, ended, until its id would have expired

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_sessions") as batch:
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
    # Replicas of an older version write a session's row at POST, delete it when the upload
    # ends and do not know the ids this one signs: upgrade every replica together, as for any
    # change in how they coordinate.


def downgrade() -> None:
    op.execute("DELETE FROM upload_sessions WHERE ended_at IS NOT NULL")
    with op.batch_alter_table("upload_sessions") as batch:
        batch.drop_column("ended_at")
