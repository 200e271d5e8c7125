"""users.session_generation and users.auth_version: server-side invalidation counters.

session_generation: a session cookie is valid only while it carries the current value (bumped by
logout, password change, role change, deactivation). auth_version: bumped by anything that changes
what any credential of the user may do (the above, plus token revocation); cached principals carry
it, and the labeling hot path compares it inside its own statement.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("auth_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("auth_version")
        batch.drop_column("session_generation")
