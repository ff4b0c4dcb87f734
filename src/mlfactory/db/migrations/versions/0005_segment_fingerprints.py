"""Fleets: each ``segment_results`` row records the fingerprints its model depends on.

``data_sha256`` (the segment's training and test rows) and ``config_sha256`` (pipeline, search,
CV, metrics, seed, columns, versions) let a fleet training find, in one query, a segment model of
*any* earlier training of the experiment that it can reuse by reference. Rows recorded before
this revision have neither (their segments are fitted again once).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segment_results", sa.Column("data_sha256", sa.String(64), nullable=True))
    op.add_column("segment_results", sa.Column("config_sha256", sa.String(64), nullable=True))
    op.create_index(
        "ix_segment_results_reuse",
        "segment_results",
        ["experiment", "config_sha256", "data_sha256"],
    )


def downgrade() -> None:
    op.drop_index("ix_segment_results_reuse", table_name="segment_results")
    with op.batch_alter_table("segment_results") as batch:
        batch.drop_column("config_sha256")
        batch.drop_column("data_sha256")
