"""Labeler quality and lineage: gold tasks, excluded judgments, labeler states and exclusions,
judgment id ranges on export snapshots.

comparison_tasks.gold holds a gold task's accepted answers (status "gold"); judgments.excluded
marks an excluded labeler's judgments (kept, left out of training); labeler_states holds pause
and cleared flags; labeler_exclusions records each exclusion, the reward run it queued and its
undo; dataset_snapshots.judgment_id_ranges records what an export held.

Revision ID: 0006
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "0006"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
TIME = app.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("comparison_tasks") as batch:
        batch.add_column(sa.Column("gold", JSON, nullable=True))
    # a constant default ("0": false on both backends), not sa.false(): Alembic's SQLite batch
    # mode copies the whole table for an expression default, reflecting comparison_tasks through
    # the foreign key on the way (SAWarning about its expression index ix_comparison_tasks_queue)
    with op.batch_alter_table("judgments") as batch:
        batch.add_column(sa.Column("excluded", sa.Boolean(), nullable=False, server_default="0"))
        batch.create_index("ix_judgments_user_id_id", ["user_id", "id"], unique=False)
    with op.batch_alter_table("dataset_snapshots") as batch:
        batch.add_column(sa.Column("judgment_id_ranges", JSON, nullable=True))
    op.create_table(
        "labeler_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("flag_cleared_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_labeler_states_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_labeler_states")),
    )  # fmt: skip
    op.create_table(
        "labeler_exclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("judgment_count", sa.Integer(), nullable=False),
        sa.Column("reward_run_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undone_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_labeler_exclusions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reward_run_id"], ["runs.id"], name=op.f("fk_labeler_exclusions_reward_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name=op.f("fk_labeler_exclusions_created_by_id_users"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"], ["users.id"],
            name=op.f("fk_labeler_exclusions_undone_by_id_users"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeler_exclusions")),
    )  # fmt: skip
    with op.batch_alter_table("labeler_exclusions") as batch:
        batch.create_index(batch.f("ix_labeler_exclusions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("labeler_exclusions")
    op.drop_table("labeler_states")
    with op.batch_alter_table("dataset_snapshots") as batch:
        batch.drop_column("judgment_id_ranges")
    # dropping columns copies the tables on SQLite: the copy of judgments need not reflect the
    # tables it refers to, and the copy of comparison_tasks would lose the expression index
    # (it cannot be reflected): drop it before, create it again after
    with op.batch_alter_table("judgments", reflect_kwargs={"resolve_fks": False}) as batch:
        batch.drop_index("ix_judgments_user_id_id")
        batch.drop_column("excluded")
    op.drop_index("ix_comparison_tasks_queue", table_name="comparison_tasks")
    with op.batch_alter_table("comparison_tasks", reflect_kwargs={"resolve_fks": False}) as batch:
        batch.drop_column("gold")
    op.create_index(
        "ix_comparison_tasks_queue",
        "comparison_tasks",
        [sa.text("(required_judgments - judgment_count)"), sa.text("priority DESC"), "created_at",
         "id"],
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )  # fmt: skip
