"""Uncertainty selection and the arena: why a task's candidates were chosen (method, score) and
its queue priority (the queue index gains it), arena campaigns and battles.

Revision ID: 0007
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
_TS = app.models.base.UTCDateTime(timezone=True)


def _queue_index(with_priority: bool) -> None:
    cols = [sa.text("(required_judgments - judgment_count)")]
    if with_priority:
        cols.append(sa.text("priority DESC"))
    op.create_index(
        "ix_comparison_tasks_queue",
        "comparison_tasks",
        [*cols, "created_at", "id"],
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def upgrade() -> None:
    with op.batch_alter_table("comparison_tasks") as batch:
        batch.add_column(sa.Column("selection_method", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("selection_score", sa.Double(), nullable=True))
        batch.add_column(sa.Column("priority", sa.Double(), nullable=False, server_default="0"))
    op.drop_index("ix_comparison_tasks_queue", table_name="comparison_tasks")
    _queue_index(with_priority=True)

    op.create_table(
        "arena_campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "stopped", "decided", name="campaignstatus", native_enum=False,
                    length=20),
            nullable=False,
        ),  # fmt: skip
        sa.Column("version_ids", _JSON, nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=True),
        sa.Column("baseline_id", sa.Integer(), nullable=True),
        sa.Column("target_battles", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("decision", _JSON, nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["model_versions.id"],
            name=op.f("fk_arena_campaigns_candidate_id_model_versions"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["baseline_id"], ["model_versions.id"],
            name=op.f("fk_arena_campaigns_baseline_id_model_versions"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_arena_campaigns_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_arena_campaigns_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arena_campaigns")),
    )  # fmt: skip
    with op.batch_alter_table("arena_campaigns") as batch:
        batch.create_index(batch.f("ix_arena_campaigns_status"), ["status"], unique=False)

    op.create_table(
        "battles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("model_a", sa.String(length=200), nullable=False),
        sa.Column("model_b", sa.String(length=200), nullable=False),
        sa.Column("version_a_id", sa.Integer(), nullable=True),
        sa.Column("version_b_id", sa.Integer(), nullable=True),
        sa.Column("completion_a_id", sa.Integer(), nullable=False),
        sa.Column("completion_b_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["arena_campaigns.id"],
            name=op.f("fk_battles_campaign_id_arena_campaigns"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["comparison_tasks.id"], name=op.f("fk_battles_task_id_comparison_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_a_id"], ["model_versions.id"],
            name=op.f("fk_battles_version_a_id_model_versions"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_b_id"], ["model_versions.id"],
            name=op.f("fk_battles_version_b_id_model_versions"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["completion_a_id"], ["completions.id"],
            name=op.f("fk_battles_completion_a_id_completions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["completion_b_id"], ["completions.id"],
            name=op.f("fk_battles_completion_b_id_completions"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_battles")),
        sa.UniqueConstraint("task_id", name=op.f("uq_battles_task_id")),
    )  # fmt: skip
    with op.batch_alter_table("battles") as batch:
        batch.create_index(batch.f("ix_battles_campaign_id"), ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_table("battles")
    op.drop_table("arena_campaigns")
    op.drop_index("ix_comparison_tasks_queue", table_name="comparison_tasks")
    with op.batch_alter_table("comparison_tasks") as batch:
        batch.drop_column("priority")
        batch.drop_column("selection_score")
        batch.drop_column("selection_method")
    _queue_index(with_priority=False)
