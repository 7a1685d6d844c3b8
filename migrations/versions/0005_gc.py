"""online garbage collection: blob state, touches and pins

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "blobs",
        sa.Column("state", sa.String(length=16), nullable=False, server_default="live"),
    )
    op.add_column("blobs", sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "blob_pins",
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", "holder", name=op.f("pk_blob_pins")),
    )


def downgrade() -> None:
    op.drop_table("blob_pins")
    # Plain ALTER TABLE .. DROP COLUMN (SQLite >= 3.35): a batch rebuild would drop `blobs`,
    # which repository_blobs references, and fail with foreign keys on.
    op.drop_column("blobs", "touched_at")
    op.drop_column("blobs", "state")
