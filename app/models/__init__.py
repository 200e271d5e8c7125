"""All tables; importing this package registers them on Base.metadata."""

from app.models.api_token import ApiToken
from app.models.app_setting import AppSetting
from app.models.assignment import Assignment, AssignmentStatus
from app.models.base import Base, utcnow
from app.models.completion import Completion
from app.models.dataset_snapshot import DatasetSnapshot
from app.models.judgment import Judgment
from app.models.labeler import LabelerExclusion, LabelerState
from app.models.model_version import ModelKind, ModelStatus, ModelVersion
from app.models.prompt import Prompt
from app.models.run import Run, RunKind, RunStatus
from app.models.task import ComparisonTask, TaskCandidate, TaskStatus
from app.models.user import Role, User

__all__ = [
    "ApiToken",
    "AppSetting",
    "Assignment",
    "AssignmentStatus",
    "Base",
    "Completion",
    "ComparisonTask",
    "DatasetSnapshot",
    "Judgment",
    "LabelerExclusion",
    "LabelerState",
    "ModelKind",
    "ModelStatus",
    "ModelVersion",
    "Prompt",
    "Role",
    "Run",
    "RunKind",
    "RunStatus",
    "TaskCandidate",
    "TaskStatus",
    "User",
    "utcnow",
]
