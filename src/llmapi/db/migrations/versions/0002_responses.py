"""Stored responses (the Responses API's `store`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Frozen as 0001 is: plain SQLAlchemy types only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.Text(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("conversation", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
    )
    op.create_index(
        op.f("ix_responses_principal_kind_principal_id_created_at"),
        "responses",
        ["principal_kind", "principal_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_responses_principal_kind_principal_id_created_at"), table_name="responses")
    op.drop_table("responses")
